"""The built-in Salesforce connector passes the conformance kit a third-party connector author runs."""

from __future__ import annotations

from pathlib import Path

from agent.sync.cli import sync_context
from agent.sync.retry import policy_for
from agent.testing.connectors import ConformanceKit
from connectors.salesforce import SPEC
from connectors.salesforce.connector import SalesforceConnector
from connectors.sandbox.salesforce.ids import make_id
from tests.connectors.conftest import DEALS, FAST_RETRIES, agent_config, sales_world


def test_the_salesforce_connector_conforms(tmp_path: Path, sandbox_factory) -> None:
    world = sales_world(tmp_path)
    sandbox = sandbox_factory(world)
    config = agent_config(sandbox)
    connector = SalesforceConnector("salesforce", config.connections["salesforce"], sync_context(config, "salesforce"),
                                    page_size=200, policy=policy_for("salesforce", **FAST_RETRIES))
    kit = ConformanceKit(SPEC, connector, sync_context(config, "salesforce"))
    try:
        assert "Opportunity" in kit.check_objects()
        first = kit.check_first_load("Opportunity")
        assert len(first.ids) == DEALS and len(first.pages) == 3
        rest = kit.check_resumable("Opportunity", stop_after=1)
        assert len(rest.ids) == DEALS - 200
        # Changes in the CRM: one deal edited, one deleted (Salesforce stamps a record it deletes).
        world.update("opportunities", 5, {"amount": 1.0})
        world.update("opportunities", 6, {"deleted": 1})
        changed = kit.check_incremental("Opportunity", expect_changed={make_id("006", 5)},
                                        expect_deleted={make_id("006", 6)})
        assert {r.source_id: r.amount for r in changed.records}[make_id("006", 5)] == 1.0
        live = {make_id("006", n) for n in range(1, DEALS + 1)} - {make_id("006", 6)}
        kit.check_all_ids("Opportunity", expect=live)
        for name in ("User", "OpportunityStage", "Task", "Event"):
            kit.check_first_load(name)
        assert kit.check_preflight() == []
    finally:
        connector.close()
