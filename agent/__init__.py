"""Sales KPI agent: core."""
