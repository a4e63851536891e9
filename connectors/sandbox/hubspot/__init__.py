"""The HubSpot side of the CRM sandbox: CRM v3 objects, search, associations v4, owners, pipelines and
properties served from a neutral world, for hubspot-api-client (`HubSpot(access_token=..., host=...)`)."""

from __future__ import annotations

from connectors.sandbox.hubspot.limits import TIERS, HubSpotLimits, SearchCaps
from connectors.sandbox.hubspot.service import DEFAULT_TOKEN, HubSpotService

__all__ = ["DEFAULT_TOKEN", "HubSpotLimits", "HubSpotService", "SearchCaps", "TIERS"]
