"""The built-in HubSpot connector, registered through ``register_connectors`` like any third-party one.

``[connections.<name>] kind = "hubspot"`` selects it (``agent.config.HubSpotConnection``): a private app
token (``access_token``, or ``env:VARIABLE``), ``base_url``, the sync options and ``[mapping]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.hookspecs import hookimpl
from agent.sync.connector import ConnectorSpec, SyncContext
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.objects import OBJECT_ORDER, OBJECT_TABLES

__all__ = ["HubSpotConnector", "register_connectors"]


def create_connector(name: str, connection_config: Any, context: SyncContext) -> HubSpotConnector:
    """The factory the engine calls for each ``kind = "hubspot"`` connection."""
    return HubSpotConnector(name, connection_config,
                            search_interval=1 / connection_config.search_requests_per_second)


@hookimpl
def register_connectors(register: Callable[[ConnectorSpec], None]) -> None:
    register(ConnectorSpec(kind="hubspot", title="HubSpot (CRM v3 API, private app token)",
                           factory=create_connector, objects=OBJECT_ORDER,
                           object_tables=OBJECT_TABLES))
