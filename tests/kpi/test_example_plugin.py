"""The example third-party package installs, is found through its entry point and is computed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.db import Database
from agent.kpi import collect_kpis
from agent.plugins import create_plugin_manager
from agent.testing.kpi import KpiDataset, assert_kpi, kpi_config, run_kpis

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kpi-collateral"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-install the example into a private target directory and put it on sys.path."""
    target, source = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("src") / "kpi-collateral"
    # Build from a copy: setuptools leaves build/ and egg-info behind in the tree it builds.
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr
    sys.path.insert(0, str(target))
    try:
        yield target
    finally:
        sys.path.remove(str(target))
        for name in [module for module in sys.modules if module.startswith("kpi_collateral")]:
            del sys.modules[name]


def test_example_package_is_picked_up_and_computed(installed_example: Path, db: Database, tmp_path: Path) -> None:
    host = create_plugin_manager()
    names = {info.name: info for info in host.plugin_infos()}
    assert names["collateral"].origin == "package kpi-collateral"
    assert set(names["collateral"].hooks) == {"register_config", "register_kpis"}
    assert collect_kpis(host, None).owners()["collateral_usage_rate"] == "collateral"

    data = KpiDataset(db)
    data.rep("ana@example.com")
    csv_path = tmp_path / "collateral.csv"
    csv_path.write_text("date,rep_email,deals,with_collateral\n2024-01-05,ana@example.com,4,3\n")
    config = kpi_config(kpis={"history_periods": 1}, plugin_config={"collateral": {"csv_path": str(csv_path)}})
    result = run_kpis(db, config, at="2024-01-31", host=host)
    assert "collateral_usage_rate" in result.computed
    assert_kpi(db, "collateral_usage_rate", "2024-01", "rep:ana@example.com", 75, numerator=3, denominator=4)
