"""Example third-party KPI plugin for sales-kpi-agent (see README.md)."""
