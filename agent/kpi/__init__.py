"""The KPI engine and the API for KPI plugins.

A plugin implements ``register_kpis(register)`` and calls ``register(KpiDefinition(...))`` once per KPI;
see ``docs/plugins.md``.  Everything a plugin needs is importable from here; the engine's internals
(``agent.kpi.engine``) may change between minor versions, this module's names may not.
"""

from __future__ import annotations

from agent.hookspecs import PLUGIN_API_VERSION
from agent.kpi.engine import RunResult, compute_kpis
from agent.kpi.measures import FORECAST_AT_START, quota, quota_amounts, rep_quotas
from agent.kpi.query import KpiValueRow, query_kpi_values
from agent.kpi.reference import load_reference_data
from agent.kpi.registry import KpiRegistry, KpiRegistryError, RegisteredKpi, collect_kpis
from agent.kpi.significance import SignificanceRow, kpi_significance
from agent.kpi.sources import SOURCES, Source, SourceError
from agent.kpi.spec import (
    DIMENSIONS,
    NO_VALUE,
    NOW,
    SCOPES,
    Aggregate,
    AsOf,
    Condition,
    Custom,
    Derived,
    Direction,
    Formula,
    KpiContext,
    KpiDefinition,
    KpiNumbers,
    PeriodWindow,
    Previous,
    Ratio,
    Unit,
    eq,
    isin,
    ne,
    not_null,
    ratio,
    total,
)

__all__ = [
    "DIMENSIONS",
    "FORECAST_AT_START",
    "NOW",
    "NO_VALUE",
    "PLUGIN_API_VERSION",
    "SCOPES",
    "SOURCES",
    "Aggregate",
    "AsOf",
    "Condition",
    "Custom",
    "Derived",
    "Direction",
    "Formula",
    "KpiContext",
    "KpiDefinition",
    "KpiNumbers",
    "KpiRegistry",
    "KpiRegistryError",
    "KpiValueRow",
    "PeriodWindow",
    "Previous",
    "Ratio",
    "RegisteredKpi",
    "RunResult",
    "SignificanceRow",
    "Source",
    "SourceError",
    "Unit",
    "collect_kpis",
    "compute_kpis",
    "eq",
    "isin",
    "kpi_significance",
    "load_reference_data",
    "ne",
    "not_null",
    "query_kpi_values",
    "quota",
    "quota_amounts",
    "rep_quotas",
    "ratio",
    "total",
]
