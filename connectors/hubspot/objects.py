"""The objects the HubSpot connector syncs, parents first, and how each is read.

Two ways of reading:

- *full*: small reference objects read whole on every run (owners and their teams; deal pipelines and
  their stages).  Deletes among them are found by the engine's id reconciliation (:meth:`all_ids`).
- *incremental*: CRM objects read through the search API with a keyset on the modification stamp (see
  ``keyset.py``), their archived records reported as deletes.

Leads: HubSpot has no lead records in most portals (the "leads" object of Sales Hub 2024 is a
prospecting queue without marketing dates), so a lead here is a HubSpot *contact* read with its
lifecycle-stage dates: created with the contact, MQL and SQL at the lifecycle dates, converted when it
became an opportunity (that date, else the creation of its first deal).  ``leads`` and ``contacts`` are
two objects over the same HubSpot contacts, each with its own cursor and cache table; a lead's id is its
contact's id, so activities logged on the contact count as the lead's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.sync.records import CrmRecord
from connectors.hubspot import normalize
from connectors.hubspot.normalize import ENGAGEMENT_PROPERTIES, Normalizer, Related

Builder = Callable[[Mapping[str, Any], Related, Normalizer, str], list[CrmRecord]]

STAMP = "hs_lastmodifieddate"
CONTACT_STAMP = "lastmodifieddate"  # contacts are filtered and sorted on this one in HubSpot's search docs
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "hubspot_owner_id", "associatedcompanyid", "createdate",
                      "lifecyclestage", "hs_analytics_source", "hs_lifecyclestage_marketingqualifiedlead_date",
                      "hs_lifecyclestage_salesqualifiedlead_date", "hs_lifecyclestage_customer_date",
                      "hs_lifecyclestage_opportunity_date", "company")
DEAL_PROPERTIES = ("dealname", "amount", "amount_in_home_currency", "deal_currency_code", "dealstage", "pipeline",
                   "closedate", "createdate", "dealtype", "hubspot_owner_id", "hs_is_closed", "hs_is_closed_won",
                   "hs_deal_stage_probability", "hs_forecast_category", "hs_analytics_source")
ENGAGEMENT_COMMON = ("hs_timestamp", "hubspot_owner_id", "hs_createdate")
# The read scopes a private app needs, per HubSpot object type (named in preflight's advice).
SCOPES = {"companies": "crm.objects.companies.read", "contacts": "crm.objects.contacts.read",
          "deals": "crm.objects.deals.read", "line_items": "crm.objects.line_items.read",
          "products": "e-commerce", "calls": "crm.objects.contacts.read", "emails": "crm.objects.contacts.read",
          "meetings": "crm.objects.contacts.read", "tasks": "crm.objects.contacts.read",
          "notes": "crm.objects.contacts.read", "owners": "crm.objects.owners.read"}


@dataclass(frozen=True)
class SyncedObject:
    """One object the connector syncs (named as the cache knows it) and the HubSpot type behind it."""

    name: str
    hubspot_type: str
    build: Builder
    properties: tuple[str, ...] = ()
    stamp: str = STAMP
    associations: tuple[str, ...] = ()  # HubSpot types whose associated ids each record needs
    history: tuple[str, ...] = ()  # propertiesWithHistory: the page is read again with these
    owner_property: str | None = "hubspot_owner_id"
    pipeline_property: str | None = None
    lookback: bool = True  # the first load reaches back only `initial_lookback`
    reports_deletes: bool = True
    first_deals: bool = False  # leads: each contact's first deal and its creation

    def search_properties(self, extra: tuple[str, ...] = ()) -> list[str]:
        return list(dict.fromkeys((*self.properties, self.stamp, "hs_object_id", *extra)))


FULL_REFRESH = ("teams", "owners", "pipelines", "stages")


def _engagement(name: str) -> SyncedObject:
    return SyncedObject(name, name, normalize.engagement(name),
                        properties=ENGAGEMENT_COMMON + ENGAGEMENT_PROPERTIES[name],
                        associations=("contacts", "deals", "companies"))


INCREMENTAL: dict[str, SyncedObject] = {
    spec.name: spec for spec in (
        SyncedObject("products", "products", normalize.product, ("name", "hs_sku", "hs_product_type"),
                     owner_property=None, lookback=False),
        SyncedObject("companies", "companies", normalize.company, ("name", "hubspot_owner_id", "industry",
                                                                   "createdate"), lookback=False),
        SyncedObject("contacts", "contacts", normalize.contact, CONTACT_PROPERTIES, stamp=CONTACT_STAMP),
        SyncedObject("leads", "contacts", normalize.lead, CONTACT_PROPERTIES, stamp=CONTACT_STAMP,
                     associations=("deals",), first_deals=True),
        SyncedObject("deals", "deals", normalize.deal, DEAL_PROPERTIES, associations=("companies",),
                     pipeline_property="pipeline"),
        SyncedObject("line_items", "line_items", normalize.line_item,
                     ("name", "hs_product_id", "quantity", "price", "amount", "hs_recurring_billing_period",
                      "hs_term_in_months", "recurringbillingfrequency", "hs_line_item_currency_code"),
                     associations=("deals",), owner_property=None),
        SyncedObject("stage_history", "deals", normalize.stage_history, ("deal_currency_code",),
                     history=("dealstage", "amount", "closedate", "hs_deal_stage_probability"),
                     pipeline_property="pipeline", reports_deletes=False),
        *(_engagement(name) for name in ("calls", "emails", "meetings", "tasks", "notes")),
    )
}

# Each object and the cache table it fills, parents first (the engine's order of sync).
OBJECT_TABLES: dict[str, str] = {
    "teams": "team", "owners": "crm_user", "pipelines": "pipeline", "stages": "stage", "products": "product",
    "companies": "account", "contacts": "contact", "leads": "lead", "deals": "opportunity",
    "line_items": "line_item", "stage_history": "stage_history", "calls": "activity", "emails": "activity",
    "meetings": "activity", "tasks": "activity", "notes": "activity",
}
OBJECT_ORDER: tuple[str, ...] = tuple(OBJECT_TABLES)
