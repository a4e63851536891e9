"""Every login flow simple-salesforce has, against the sandbox over HTTPS, and the re-login on 401."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession
from simple_salesforce.login import token_login

from connectors.sandbox.salesforce import SalesforceCredentials, SalesforceService, generate_jwt_key_pair
from connectors.sandbox.salesforce.auth import ORG_ID
from connectors.sandbox.testing import RunningSandbox, running_sandbox
from connectors.sandbox.world import World
from tests.sandbox.test_salesforce_support import build_world

QUERY = "SELECT Name FROM Account WHERE Name = 'Acme'"


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return generate_jwt_key_pair()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("salesforce-auth"))
    yield built
    built.close()


@pytest.fixture(scope="module")
def sandbox(world: World, sandbox_tls_dir: Path, key_pair: tuple[str, str]) -> Iterator[RunningSandbox]:
    credentials = dataclasses.replace(SalesforceCredentials.default(), jwt_public_key=key_pair[1])
    service = SalesforceService(world, credentials=credentials, limits_scale=0)
    with running_sandbox(world, tls_dir=sandbox_tls_dir, services={"salesforce": service}) as running:
        yield running


def names(sf: Salesforce) -> list[str]:
    return [record["Name"] for record in sf.query(QUERY)["records"]]


def token_url(sandbox: RunningSandbox) -> str:
    return f"https://{sandbox.salesforce_domain()}.salesforce.com/services/oauth2/token"


def test_soap_login_with_security_token(sandbox: RunningSandbox) -> None:
    sf = sandbox.salesforce_client(auth="password")
    assert sf.auth_type == "password"
    assert sf.sf_instance == f"127.0.0.1:{sandbox.salesforce.port}"  # from the SOAP serverUrl
    assert sf.base_url == f"https://127.0.0.1:{sandbox.salesforce.port}/services/data/v59.0/"
    assert names(sf) == ["Acme"]


def test_soap_login_failures(sandbox: RunningSandbox) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        sandbox.salesforce_client(auth="password", password="wrong")
    assert raised.value.code == "INVALID_LOGIN"
    assert raised.value.auth_message == "Invalid username, password, security token; or user locked out."
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        sandbox.salesforce_client(auth="password", security_token="wrong-token")
    assert raised.value.code == "INVALID_LOGIN"


def test_soap_login_with_organization_id(sandbox: RunningSandbox) -> None:
    credentials = sandbox.salesforce_credentials()
    common: dict[str, Any] = {"username": credentials.username, "password": credentials.password,
                              "session": sandbox.requests_session(), "domain": sandbox.salesforce_domain()}
    sf = Salesforce(organizationId=ORG_ID[:15], **common)
    assert sf.auth_type == "ipfilter"
    assert names(sf) == ["Acme"]
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        Salesforce(organizationId="00D000000000001", **common)
    assert raised.value.code == "INVALID_LOGIN"


def test_oauth_username_password_flow(sandbox: RunningSandbox) -> None:
    sf = sandbox.salesforce_client(auth="oauth_password")
    assert sf.auth_type == "password"
    assert names(sf) == ["Acme"]
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        sandbox.salesforce_client(auth="oauth_password", password="wrong")
    assert (raised.value.code, raised.value.auth_message) == ("invalid_grant", "authentication failure")
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        sandbox.salesforce_client(auth="oauth_password", consumer_secret="wrong")
    assert (raised.value.code, raised.value.auth_message) == ("invalid_client", "invalid client credentials")


def test_client_credentials_flow_with_basic_auth(sandbox: RunningSandbox) -> None:
    sandbox.log.clear()
    sf = sandbox.salesforce_client(auth="client_credentials")
    assert sf.auth_type == "client-credentials"
    assert names(sf) == ["Acme"]
    assert sandbox.log.count(path_contains="sfauth.salesforce.com/services/oauth2/token", status=200) == 1
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        sandbox.salesforce_client(auth="client_credentials", consumer_key="someone-else")
    assert (raised.value.code, raised.value.auth_message) == ("invalid_client_id", "client identifier invalid")


def test_jwt_bearer_flow(sandbox: RunningSandbox, key_pair: tuple[str, str]) -> None:
    credentials = sandbox.salesforce_credentials()
    common: dict[str, Any] = {"username": credentials.username, "consumer_key": credentials.consumer_key,
                              "session": sandbox.requests_session(), "domain": sandbox.salesforce_domain()}
    sf = Salesforce(privatekey=key_pair[0], **common)
    assert sf.auth_type == "jwt-bearer"
    assert names(sf) == ["Acme"]
    other_private_key, _ = generate_jwt_key_pair()
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        Salesforce(privatekey=other_private_key, **common)
    assert (raised.value.code, raised.value.auth_message) == ("invalid_grant", "invalid assertion")
    # the client warns that the app may need approving, as it does against the real org
    with pytest.raises(SalesforceAuthenticationFailed) as raised, pytest.warns(UserWarning, match="authorize"):
        Salesforce(privatekey=key_pair[0], **(common | {"username": "nobody@example.com"}))
    assert (raised.value.code, raised.value.auth_message) == ("invalid_grant", "user hasn't approved this consumer")


@pytest.mark.parametrize(("claims", "code", "message"), [
    ({"exp": "1000"}, "invalid_grant", "expired authorization code"),
    ({"aud": "https://elsewhere.example.com"}, "invalid_grant", "audience is invalid"),
    ({"iss": "another-app"}, "invalid_client_id", "client identifier invalid"),
    ({"aud": "https://login.salesforce.com"}, None, None),  # the standard audiences are accepted too
])
def test_jwt_claims_are_checked(sandbox: RunningSandbox, key_pair: tuple[str, str], claims: dict[str, str],
                                code: str | None, message: str | None) -> None:
    credentials = sandbox.salesforce_credentials()
    payload = {"iss": credentials.consumer_key, "sub": credentials.username,
               "aud": f"https://{sandbox.salesforce_domain()}.salesforce.com",
               "exp": f"{time.time() + 180:.0f}"} | claims
    assertion = jwt.encode(payload, key_pair[0], algorithm="RS256")
    data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    if code is None:
        token, instance = token_login(token_url(sandbox), data, sandbox.salesforce_domain(),
                                      credentials.consumer_key, None, None, sandbox.requests_session())
        assert instance == f"127.0.0.1:{sandbox.salesforce.port}" and token.startswith(ORG_ID[:15] + "!")
        return
    with pytest.raises(SalesforceAuthenticationFailed) as raised:
        token_login(token_url(sandbox), data, sandbox.salesforce_domain(), credentials.consumer_key, None, None,
                    sandbox.requests_session())
    assert (raised.value.code, raised.value.auth_message) == (code, message)


def test_token_answer_has_salesforce_shape(sandbox: RunningSandbox) -> None:
    credentials = sandbox.salesforce_credentials()
    answer = sandbox.requests_session().post(token_url(sandbox), data={
        "grant_type": "password", "client_id": credentials.consumer_key,
        "client_secret": credentials.consumer_secret, "username": credentials.username,
        "password": credentials.password + credentials.security_token})
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) >= {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert body["instance_url"] == f"https://127.0.0.1:{sandbox.salesforce.port}"
    assert body["token_type"] == "Bearer"
    refused = sandbox.requests_session().post(token_url(sandbox), data={"grant_type": "authorization_code"})
    assert (refused.status_code, refused.json()) == (400, {"error": "unsupported_grant_type",
                                                           "error_description": "grant type not supported"})


def test_direct_session_with_a_bad_token_is_invalid_session(sandbox: RunningSandbox) -> None:
    sf = Salesforce(instance_url=sandbox.salesforce.base_url, session_id="00D!not-a-token",
                    session=sandbox.requests_session())
    with pytest.raises(SalesforceExpiredSession) as raised:
        sf.query(QUERY)
    assert raised.value.status == 401
    assert raised.value.content == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_direct_session_with_a_token_from_login(sandbox: RunningSandbox) -> None:
    logged_in = sandbox.salesforce_client()
    sf = Salesforce(instance_url=sandbox.salesforce.base_url, session_id=logged_in.session_id,
                    session=sandbox.requests_session())
    assert names(sf) == ["Acme"]


@pytest.mark.parametrize("auth", ["password", "oauth_password"])
def test_expired_session_makes_the_client_log_in_again(sandbox: RunningSandbox, auth: str) -> None:
    sf = sandbox.salesforce_client(auth=auth)
    first_token = sf.session_id
    sandbox.log.clear()
    sandbox.faults.add(_fault("session_expired", match="/query"))
    assert names(sf) == ["Acme"]  # 401, login, retry: the caller never sees the expiry
    assert sf.session_id != first_token
    login_path = "/services/Soap/u/" if auth == "password" else "/services/oauth2/token"
    assert sandbox.log.count(path_contains=login_path, status=200) == 1
    assert sandbox.log.count(path_contains="/query", status=401) == 1
    assert sandbox.log.count(path_contains="/query", status=200) == 1
    stale = Salesforce(instance_url=sandbox.salesforce.base_url, session_id=first_token,
                       session=sandbox.requests_session())
    with pytest.raises(SalesforceExpiredSession):
        stale.query(QUERY)  # the expired token stays dead


def test_sessions_time_out(world: World, sandbox_tls_dir: Path) -> None:
    service = SalesforceService(world, limits_scale=0, session_seconds=0.3)
    with running_sandbox(world, tls_dir=sandbox_tls_dir, services={"salesforce": service}) as running:
        sf = running.salesforce_client()
        assert names(sf) == ["Acme"]
        time.sleep(0.4)
        running.log.clear()
        assert names(sf) == ["Acme"]
        assert running.log.count(path_contains="/query", status=401) == 1
        assert running.log.count(path_contains="/services/Soap/u/", status=200) == 1


def test_https_is_required_and_the_ca_is_what_makes_it_trusted(sandbox: RunningSandbox) -> None:
    untrusting = requests.Session()
    untrusting.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        Salesforce(username="x", password="y", security_token="z", session=untrusting,
                   domain=sandbox.salesforce_domain())


def _fault(kind: str, **fields: Any) -> Any:
    from connectors.sandbox.faults import Fault

    return Fault("salesforce", kind, **fields)

