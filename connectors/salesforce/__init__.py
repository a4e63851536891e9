"""The built-in Salesforce connector, registered through the same hook as a third-party connector.

``pyproject.toml`` declares it under the ``kpi_agent`` entry-point group (``salesforce =
"connectors.salesforce"``); the agent never imports it directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.hookspecs import hookimpl
from agent.sync.connector import ConnectorSpec
from connectors.salesforce.objects import OBJECT_TABLES, OBJECTS


def _factory(name: str, config: Any, context: Any) -> Any:
    from connectors.salesforce.connector import create_connector  # the client library loads only when used

    return create_connector(name, config, context)


SPEC = ConnectorSpec(kind="salesforce", title="Salesforce", factory=_factory,
                     objects=tuple(sobject.name for sobject in OBJECTS), object_tables=OBJECT_TABLES)


@hookimpl
def register_connectors(register: Callable[[ConnectorSpec], None]) -> None:
    register(SPEC)
