from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.config import AgentConfig, ConfigError, check_kpi_keys, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def problems_of(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return {problem.key: problem.message for problem in caught.value.problems}


def test_example_config_is_valid_and_documents_every_section() -> None:
    unset: list[str] = []
    config = load_config(EXAMPLE, unset_env=unset)
    assert config.agent.timezone == "Asia/Jakarta"
    assert set(config.connections) == {"salesforce_main", "hubspot_main"}
    assert config.teams["south"].members == ["ana@example.com", "budi@example.com"]
    assert "SF_PASSWORD" in unset
    text = EXAMPLE.read_text()
    for section in AgentConfig.model_fields:
        assert section in text, f"config.example.toml does not document [{section}]"


def test_unknown_key_is_named_with_a_suggestion() -> None:
    assert problems_of({"agent": {"timezon": "UTC"}}) == {"agent.timezon": "unknown key; did you mean 'timezone'?"}
    found = problems_of({"connections": {"eu": {"kind": "salesforce", "username": "u", "passwrd": "x"}}})
    assert found == {"connections.eu.passwrd": "unknown key; did you mean 'password'?"}


def test_wrong_type_is_named() -> None:
    found = problems_of({"kpis": {"history_periods": "twelve"}})
    assert list(found) == ["kpis.history_periods"]
    assert "integer" in found["kpis.history_periods"]


def test_bad_cron_and_unknown_timezone() -> None:
    found = problems_of({"schedule": {"digest": "0 25 * * *"}, "agent": {"timezone": "Asia/Jakrta"}})
    assert found["schedule.digest"].startswith("bad cron string '0 25 * * *'")
    assert found["agent.timezone"].startswith("unknown timezone 'Asia/Jakrta'")


def test_team_without_members_and_quota_for_unknown_team() -> None:
    assert (
        "at least one member" in problems_of({"teams": {"emea": {"name": "EMEA", "members": []}}})["teams.emea.members"]
    )
    found = problems_of(
        {
            "teams": {"emea": {"name": "EMEA", "members": ["a@x.io"]}},
            "quotas": [{"team": "emae", "start": "2026-01-01", "amount": 1}],
        }
    )
    assert found == {"quotas[0].team": "no team 'emae' in [teams]; did you mean 'emea'?"}


def test_quota_needs_exactly_one_scope() -> None:
    found = problems_of({"quotas": [{"start": "2026-01-01", "amount": 1}]})
    assert "exactly one of rep" in found["quotas[0]"]


def test_unknown_kpi_key_is_named() -> None:
    config = parse_config({"kpis": {"disabled": ["win_rat"]}, "plugins": {"kpi_owner": {"revenue": "mine"}}})
    problems = check_kpi_keys(config, ["win_rate", "revenue"])
    assert [(p.key, p.message) for p in problems] == [
        ("kpis.disabled[0]", "no plugin provides KPI 'win_rat'; did you mean 'win_rate'?")
    ]


def test_auth_mode_needs_its_keys() -> None:
    found = problems_of({"connections": {"eu": {"kind": "salesforce", "auth": "jwt", "username": "u"}}})
    assert found == {"connections.eu": "auth = 'jwt' needs consumer_key, private_key_file"}


def test_unknown_connector_kind() -> None:
    assert "unknown connector kind" in problems_of({"connections": {"x": {"kind": "pipedrive"}}})["connections.x.kind"]


def test_secrets_come_from_the_environment_and_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HS_TOKEN_FOR_TEST", "pat-na1-very-secret-value")
    config = parse_config({"connections": {"hs": {"kind": "hubspot", "access_token": "env:HS_TOKEN_FOR_TEST"}}})
    token = config.connections["hs"].access_token
    assert token.get_secret_value() == "pat-na1-very-secret-value"
    assert "very-secret" not in repr(config) and "very-secret" not in str(config)
    missing = problems_of({"connections": {"hs": {"kind": "hubspot", "access_token": "env:NOT_SET_ANYWHERE"}}})
    assert missing == {"connections.hs.access_token": "environment variable NOT_SET_ANYWHERE is not set"}


def test_a_misplaced_secret_is_not_echoed_in_errors() -> None:
    # A password pasted into a numeric field: the error names the key but must not repeat the value.
    with pytest.raises(ConfigError) as caught:
        parse_config({"kpis": {"stale_days": "hunter2-SECRET"}})
    assert "hunter2" not in str(caught.value)


def test_config_check_cli_names_keys_and_prints_no_secret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[agent]\ntimezone = "Nowhere/City"\n[schedule]\nsync = "every minute"\n'
        '[connections.sf]\nkind = "salesforce"\nusername = "u"\npassword = "Sup3r-Secret-Pass"\nsecurity_tokn = "x"\n'
    )
    result = CliRunner().invoke(app, ["config", "check", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    output = result.output
    for key in ("agent.timezone", "schedule.sync", "connections.sf.security_tokn"):
        assert key in output
    assert "Sup3r-Secret-Pass" not in output


def test_config_check_cli_rejects_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[agent\ntimezone = 1\n")
    result = CliRunner().invoke(app, ["config", "check", str(bad)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "not valid TOML" in result.output


def test_a_secret_that_reaches_a_log_line_is_masked(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import logging

    from agent.logs import configure_logging, secrets_of

    monkeypatch.setenv("SF_PW_FOR_TEST", "correct-horse-battery")
    config = parse_config({"connections": {"sf": {"kind": "salesforce", "username": "u",
                                                   "password": "env:SF_PW_FOR_TEST"}}})
    configure_logging("INFO", secrets_of(config))
    logging.getLogger("agent.test").warning("login to %s failed", "https://u:correct-horse-battery@x")
    try:
        raise RuntimeError("client said: bad password correct-horse-battery")
    except RuntimeError:
        logging.getLogger("agent.test").exception("sync failed")
    err = capsys.readouterr().err
    assert "login to https://u:***@x failed" in err
    assert "bad password ***" in err
    assert "correct-horse-battery" not in err


def test_a_mapping_to_an_unknown_kind_is_named() -> None:
    found = problems_of({"connections": {"sf": {"kind": "salesforce", "username": "u", "password": "p",
                                                "mapping": {"deal_types": {"Expansion": "upsel"}}}}})
    assert found == {"connections.sf.mapping.deal_types": "'Expansion' maps to 'upsel', which is not a deal type; "
                     "use one of new_business, upsell, cross_sell, renewal, other"}
