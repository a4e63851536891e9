"""Connector kinds collected through ``register_connectors``: tagged by plugin, conflicts named, a broken
plugin costing only its own connectors."""

from __future__ import annotations

from types import SimpleNamespace

from agent.hookspecs import hookimpl
from agent.sync.connector import ConnectorSpec
from agent.sync.registry import collect_connectors
from agent.testing.connectors import MemoryConnector, memory_spec
from agent.testing.plugins import plugin_host


def plugin(*specs: object, fail: bool = False) -> SimpleNamespace:
    @hookimpl
    def register_connectors(register):
        if fail:
            raise RuntimeError("boom")
        for spec in specs:
            register(spec)

    return SimpleNamespace(register_connectors=register_connectors)


def spec(kind: str) -> ConnectorSpec:
    return memory_spec(MemoryConnector({"deals": []}, tables={"deals": "opportunity"}), kind=kind)


def test_each_kind_is_tagged_with_its_plugin() -> None:
    registry = collect_connectors(plugin_host(("pipedrive", plugin(spec("pipedrive"))), ("csv", plugin(spec("csv")))))
    assert sorted(registry) == ["csv", "pipedrive"]
    assert registry.plugin_of("pipedrive") == "pipedrive" and registry.errors == []


def test_two_plugins_claiming_one_kind_both_lose_it_with_an_error_naming_both() -> None:
    host = plugin_host(("a", plugin(spec("crm"))), ("b", plugin(spec("crm"))), ("c", plugin(spec("csv"))))
    registry = collect_connectors(host)
    assert list(registry) == ["csv"]
    assert sorted((e.plugin, e.message) for e in registry.errors) == [
        ("a", "connector kind 'crm' is registered by a and b; both are left out (disable one of the plugins in "
              "[plugins] disabled)"),
        ("b", "connector kind 'crm' is registered by a and b; both are left out (disable one of the plugins in "
              "[plugins] disabled)")]


def test_a_plugin_that_raises_or_registers_junk_is_reported_and_the_others_load() -> None:
    registry = collect_connectors(plugin_host(("broken", plugin(fail=True)), ("junk", plugin({"kind": "x"})),
                                              ("good", plugin(spec("csv")))))
    assert list(registry) == ["csv"]
    assert sorted((e.plugin, e.message) for e in registry.errors) == [
        ("broken", "register_connectors raised RuntimeError: boom; its connectors are left out"),
        ("junk", "register() was given dict, not agent.sync.connector.ConnectorSpec")]


def test_the_built_in_connectors_come_through_the_entry_points() -> None:
    registry = collect_connectors(plugin_host(load_entry_points=True))
    assert registry.plugin_of("salesforce") == "salesforce"
    assert registry["salesforce"].object_tables["Task"] == "activity"


def test_a_warning_that_names_a_config_section_prints_it() -> None:
    import io

    from rich.console import Console

    from agent.sync.cli import _print_warnings

    out = io.StringIO()
    _print_warnings(Console(file=out, width=200), ["Task.Type value 'Demo' lands as 'call' (add it to "
                                                   "[connections.<name>.mapping.activity_types] to count it)"])
    assert "add it to [connections.<name>.mapping.activity_types] to count it" in out.getvalue()
