"""The HubSpot side of the CRM sandbox, for hubspot-api-client 12 (and any HTTP client).

    service = HubSpotService(world, only_crm=None, limits_scale=1.0, token=DEFAULT_TOKEN,
                             limits=None, tier="professional")
    with SandboxServer(service) as server:
        client = hubspot.HubSpot(access_token=service.token, host=server.base_url)

Served: CRM v3 objects (deals, contacts, companies, line_items, products, calls, emails, meetings, tasks,
notes, leads; names, singular names and type ids such as 0-3 all work): list with after/limit/properties/
propertiesWithHistory/associations/archived, read by id (idProperty, archived), batch read, and search
(filterGroups, every operator, one sort, query, limit <= 200, the 10,000-result window, `after` as an offset
into the live result). Associations v4 per object and batch read, owners (teams, userId, archived),
pipelines and stages with metadata, property definitions. Errors and rate limits as HubSpot answers them.

HubSpot ids are world ids plus a fixed base per type (objects.ID_BASES; owners 40,000,000, users 9,000,000,
teams 30,000,000). Limits (limits.HubSpotLimits) are real by default and `limits_scale` multiplies the
request budgets (0 = off); page sizes and search caps stay real.
"""

from __future__ import annotations

from connectors.sandbox.hubspot.limits import TIERS, HubSpotLimits, SearchCaps
from connectors.sandbox.hubspot.service import DEFAULT_TOKEN, HubSpotService

__all__ = ["DEFAULT_TOKEN", "HubSpotLimits", "HubSpotService", "SearchCaps", "TIERS"]
