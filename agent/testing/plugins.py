"""Helpers for testing plugins against a real plugin host (used by this project's own tests too)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from agent.plugins import PluginHost, create_plugin_manager


def plugin_host(*plugins: tuple[str, object], load_entry_points: bool = False) -> PluginHost:
    """A fresh host with only the given ``(name, plugin)`` pairs (and, if asked, the installed ones)."""
    return create_plugin_manager(load_entry_points=load_entry_points, plugins=plugins)


@contextmanager
def installed_distribution(
    directory: Path, name: str, entry_points: Mapping[str, str], modules: Mapping[str, str] | None = None
) -> Iterator[Path]:
    """Make ``name`` look pip-installed for the duration: a ``.dist-info`` with ``kpi_agent`` entry
    points (``{entry name: "module:attr"}``) and optional module sources, on ``sys.path``.

    It exercises the same discovery path (``importlib.metadata``) as a real installed package.
    """
    site = directory / f"site-{name}"
    dist_info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = ["[kpi_agent]"] + [f"{entry} = {target}" for entry, target in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(source)
    sys.path.insert(0, str(site))
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for module in modules or {}:
            sys.modules.pop(module, None)
