from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent import hookspecs
from agent.cli import app
from agent.hookspecs import hookimpl
from agent.plugins import PluginError, create_plugin_manager, entry_points
from agent.testing.plugins import installed_distribution, plugin_host

GOOD_PLUGIN = """
from agent.hookspecs import hookimpl
from agent.config import ConfigSection
from pydantic import BaseModel

class Settings(BaseModel):
    threshold: int = 3

@hookimpl
def register_config(register):
    register(ConfigSection("goodone", Settings))
"""
BROKEN_PLUGIN = "raise RuntimeError('boom at import')\n"
TYPO_PLUGIN = """
from agent.hookspecs import hookimpl

@hookimpl
def register_kpi(register):
    pass
"""


def test_every_hookspec_is_documented_with_args_and_returns() -> None:
    specs = [name for name in dir(hookspecs) if name.startswith("register_")]
    assert specs == ["register_config", "register_connectors", "register_kpis"]
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Args:" in doc and "Returns:" in doc and "versionadded" in doc, name


def test_builtin_plugins_come_through_the_entry_point_group() -> None:
    builtin = {ep.name: ep.value for ep in entry_points() if ep.dist and ep.dist.metadata["Name"] == "sales-kpi-agent"}
    assert builtin == {
        "revenue": "plugins.revenue",
        "conversion": "plugins.conversion",
        "activity": "plugins.activity",
        "customer": "plugins.customer",
        "salesforce": "connectors.salesforce",
        "hubspot": "connectors.hubspot",
    }


def test_broken_plugin_is_reported_by_name_and_the_others_load(tmp_path: Path) -> None:
    with installed_distribution(
        tmp_path,
        "kpi-third-party",
        {"goodone": "kpi_good_plugin", "badone": "kpi_broken_plugin", "typo": "kpi_typo_plugin"},
        {"kpi_good_plugin": GOOD_PLUGIN, "kpi_broken_plugin": BROKEN_PLUGIN, "kpi_typo_plugin": TYPO_PLUGIN},
    ):
        host = create_plugin_manager()
    errors = {error.name: error for error in host.load_errors}
    assert "boom at import" in errors["badone"].message
    assert errors["badone"].distribution == "kpi-third-party"
    assert (
        errors["typo"].message == "plugin 'typo' implements unknown hook 'register_kpi' — did you mean 'register_kpis'?"
    )
    assert host.manager.get_plugin("goodone") is not None
    assert host.manager.get_plugin("typo") is None
    info = {i.name: i for i in host.plugin_infos()}
    assert info["goodone"].origin == "package kpi-third-party"
    assert info["goodone"].hooks == ("register_config",)


def test_strict_mode_turns_a_broken_plugin_into_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPI_AGENT_STRICT_PLUGINS", "1")
    with (
        installed_distribution(
            tmp_path, "kpi-broken", {"badone": "kpi_broken_plugin"}, {"kpi_broken_plugin": BROKEN_PLUGIN}
        ),
        pytest.raises(PluginError, match="badone"),
    ):
        create_plugin_manager()


def test_allow_list_of_an_empty_string_loads_no_third_party_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KPI_AGENT_LOAD_PLUGINS", "")
    with installed_distribution(tmp_path, "kpi-good", {"goodone": "kpi_good_plugin"}, {"kpi_good_plugin": GOOD_PLUGIN}):
        host = create_plugin_manager()
    assert host.manager.get_plugin("goodone") is None


def test_disabled_plugin_is_listed_but_not_loaded(tmp_path: Path) -> None:
    with installed_distribution(tmp_path, "kpi-good", {"goodone": "kpi_good_plugin"}, {"kpi_good_plugin": GOOD_PLUGIN}):
        host = create_plugin_manager(blocked=["goodone"])
    info = {i.name: i for i in host.plugin_infos()}
    assert info["goodone"].enabled is False
    assert host.impls("register_config") == [] or all(i.plugin_name != "goodone" for i in host.impls("register_config"))


def test_a_class_instead_of_an_instance_is_refused_with_the_fix() -> None:
    class MyPlugin:
        @hookimpl
        def register_kpis(self, register):  # pragma: no cover - never called
            pass

    host = plugin_host(("mine", MyPlugin))
    assert host.load_errors[0].message == "plugin 'mine' is a class, not an instance: register MyPlugin() instead"


def test_impls_are_called_one_by_one_with_argument_pruning() -> None:
    calls: list[str] = []

    class First:
        @hookimpl
        def register_kpis(self, register):
            calls.append("first")
            register("first-kpi")

    class Second:
        @hookimpl
        def register_kpis(self):  # takes none of the arguments: allowed
            calls.append("second")
            raise ValueError("second is broken")

    host = plugin_host(("first", First()), ("second", Second()))
    registered: list[str] = []
    outcomes = {}
    for impl in host.impls("register_kpis"):
        try:
            impl(register=registered.append)
            outcomes[impl.plugin_name] = "ok"
        except ValueError as error:
            outcomes[impl.plugin_name] = str(error)
    assert outcomes == {"first": "ok", "second": "second is broken"}
    assert registered == ["first-kpi"]
    assert calls == ["second", "first"]  # last registered is called first, as pluggy does


def test_plugins_command_lists_and_reports(tmp_path: Path) -> None:
    with installed_distribution(
        tmp_path,
        "kpi-mixed",
        {"goodone": "kpi_good_plugin", "badone": "kpi_broken_plugin"},
        {"kpi_good_plugin": GOOD_PLUGIN, "kpi_broken_plugin": BROKEN_PLUGIN},
    ):
        result = CliRunner().invoke(app, ["plugins", "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    names = {row["name"]: row for row in payload["plugins"]}
    assert names["goodone"]["origin"] == "package kpi-mixed"
    assert any(e["name"] == "badone" and "boom at import" in e["error"] for e in payload["errors"])


def test_plugin_config_section_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[plugin_config.goodone]\nthreshold = "many"\n[plugin_config.nobody]\nx = 1\n')
    with installed_distribution(tmp_path, "kpi-good", {"goodone": "kpi_good_plugin"}, {"kpi_good_plugin": GOOD_PLUGIN}):
        result = CliRunner().invoke(app, ["config", "check", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "plugin_config.goodone.threshold" in result.output
    assert "plugin_config.nobody" in result.output


def test_every_hook_has_a_documented_section_with_its_exact_signature() -> None:
    # Datasette's rule: a hook without a documentation heading that has its exact arguments is a defect.
    import inspect
    import re

    docs = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    headings = dict(re.findall(r"^### `(\w+)\((.*?)\)", docs, flags=re.MULTILINE))
    for name in [n for n in dir(hookspecs) if n.startswith("register_")]:
        assert name in headings, f"docs/plugins.md has no section for hook {name}"
        documented = re.findall(r"(?:^|,\s*)(\w+)\s*:", headings[name])
        assert documented == list(inspect.signature(getattr(hookspecs, name)).parameters), name
