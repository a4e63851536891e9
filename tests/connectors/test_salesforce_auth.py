"""Every Salesforce auth the config offers, against the sandbox's login endpoints, and preflight.

A secret never shows: not in outcomes, not in problems, not in warnings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.db import create_database
from agent.sync.cli import sync_context
from connectors.salesforce import SPEC
from connectors.sandbox.salesforce import SalesforceService
from connectors.sandbox.salesforce.auth import SalesforceCredentials, generate_jwt_key_pair
from tests.connectors.conftest import agent_config, by_object, query, run_salesforce, sales_world

SECRETS = ("sandbox-password", "SandboxSecurityToken0", "sandbox-consumer-secret")


def logins(sandbox) -> list[str]:
    """The login endpoints the sync called: 'soap' or 'token'."""
    return ["soap" if "/Soap/" in entry.path else "token" for entry in sandbox.log.entries()
            if "/sfauth" in entry.path]


@pytest.mark.parametrize(("auth", "overrides", "endpoint"), [
    ("soap password", {}, "soap"),
    ("oauth password", {"security_token": None}, "token"),
    ("client credentials", {"auth": "client_credentials"}, "token"),
])
def test_each_auth_logs_in_and_syncs(tmp_path: Path, sandbox_factory, auth: str, overrides: dict,
                                     endpoint: str) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path, deals=3))
    config = agent_config(sandbox)
    section = config.connections["salesforce"].model_copy(update=overrides)
    config = config.model_copy(update={"connections": {"salesforce": section}})
    db = create_database(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    outcomes = by_object(run_salesforce(db, config, objects=["User", "Opportunity"]))
    assert {name: (o.status, o.records) for name, o in outcomes.items()} == {
        "User": ("ok", 2), "Opportunity": ("ok", 3)}
    assert logins(sandbox) == [endpoint]
    assert not any(secret in repr(outcomes) for secret in SECRETS)


def test_jwt_bearer_signs_with_the_private_key_file(tmp_path: Path, sandbox_factory) -> None:
    private_pem, public_pem = generate_jwt_key_pair()
    key_file = tmp_path / "server.key"
    key_file.write_text(private_pem)
    world = sales_world(tmp_path, deals=3)
    credentials = SalesforceCredentials(**{**SalesforceCredentials.default().__dict__, "jwt_public_key": public_pem})
    sandbox = sandbox_factory(world, services={"salesforce": SalesforceService(world, credentials=credentials)})
    config = agent_config(sandbox, auth="jwt", private_key_file=str(key_file))
    db = create_database(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    outcomes = by_object(run_salesforce(db, config, objects=["Opportunity"]))
    assert (outcomes["Opportunity"].status, outcomes["Opportunity"].records) == ("ok", 3)
    assert logins(sandbox) == ["token"]


def test_a_refused_login_names_the_keys_to_check_and_shows_no_secret(tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path, deals=3))
    config = agent_config(sandbox, password="wrong-password-123")
    db = create_database(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    outcomes = run_salesforce(db, config, objects=["User", "Opportunity"])
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].message == ("salesforce: Salesforce refused the login (auth = 'password': INVALID_LOGIN); "
                                   "check username, password, security_token, domain in [connections.salesforce]")
    assert logins(sandbox) == ["soap"]  # refused once, not retried, and not again for the second object
    assert "wrong-password-123" not in repr(outcomes)


def test_preflight_of_a_healthy_connection_finds_nothing(tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path, deals=3))
    config = agent_config(sandbox)
    connector = SPEC.factory("salesforce", config.connections["salesforce"], sync_context(config, "salesforce"))
    try:
        assert connector.preflight() == []
    finally:
        connector.close()


def test_an_untrusted_certificate_is_a_clear_config_problem(tmp_path: Path, sandbox_factory) -> None:
    sandbox = sandbox_factory(sales_world(tmp_path, deals=3))
    other_ca = tmp_path / "other-ca.pem"
    from connectors.sandbox.tls import ensure_test_ca

    other_ca.write_bytes(ensure_test_ca(tmp_path / "other").ca_cert.read_bytes())
    config = agent_config(sandbox, ca_bundle=str(other_ca))
    db = create_database(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    [outcome] = run_salesforce(db, config, objects=["User"])
    assert outcome.status == "failed"
    assert outcome.message == ("salesforce: Salesforce's TLS certificate is not trusted; set ca_bundle in "
                               "[connections.salesforce] to the CA file that signed it")
    assert query(db, "SELECT count(*) FROM crm_user") == [(0,)]
