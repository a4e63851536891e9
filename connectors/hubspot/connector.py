"""The HubSpot connector: one configured HubSpot portal (private app token) as a source of pages.

Per object (``objects.py``), ``fetch`` yields :class:`Page` s whose cursor the engine commits with their
records:

- first load (no cursor, or ``--full``): id-ordered search (``keyset.by_id``), resumable from
  ``initial_last_id``; its last page sets ``stamp`` to the load's start minus the overlap;
- steady state: the archived records first (as ``deleted_ids``: archiving does not bump the stamp, so
  search never shows it), then the keyset over the modification stamp (``keyset.changed_since``) from the
  cursor the engine hands in, whose stamp the engine has already moved back by the overlap;
- owners, teams, pipelines and stages: read whole each run.

A cursor handed out is never behind the stored one, so re-reading the overlap never moves it back.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import HubSpotConnection
from agent.sync.connector import Cursor, Page, Problem, SyncContext
from agent.sync.records import CrmRecord, QuarantinedItem
from agent.sync.retry import RetryPolicy
from connectors.hubspot import keyset, normalize
from connectors.hubspot.api import (
    BATCH_READ_MAX,
    HISTORY_PAGE_MAX,
    LIST_PAGE_MAX,
    SEARCH_INTERVAL,
    SEARCH_PAGE_MAX,
    HubSpotApi,
)
from connectors.hubspot.errors import HubSpotConfigError, HubSpotError, HubSpotRequestRefused
from connectors.hubspot.keyset import Position, Query
from connectors.hubspot.normalize import Normalizer, Related
from connectors.hubspot.objects import FULL_REFRESH, INCREMENTAL, OBJECT_ORDER, SCOPES, SyncedObject
from connectors.hubspot.values import BadRecord, epoch_ms, from_epoch_ms, parse_instant

log = logging.getLogger(__name__)

PRIMARY_ASSOCIATION_LABEL = "Primary"
DEAL_PIPELINE_TYPE = "deals"


class HubSpotConnector:
    """Syncs one HubSpot portal; see the module docstring for how each object is read."""

    def __init__(self, name: str, config: HubSpotConnection, *, policy: RetryPolicy | None = None,
                 search_interval: float = SEARCH_INTERVAL, page_size: int = SEARCH_PAGE_MAX) -> None:
        self.name = name
        self.config = config
        self.page_size = min(page_size, SEARCH_PAGE_MAX)
        self.api = HubSpotApi(name, config, policy=policy, search_interval=search_interval)
        self._warned: set[str] = set()
        self._property_names: dict[str, set[str]] = {}
        self._pipeline_ids: list[str] | None = None
        self._option_labels: dict[str, dict[str, str]] | None = None

    # -- the Connector protocol ----------------------------------------------------------------------

    def objects(self) -> Sequence[str]:
        return OBJECT_ORDER

    def fetch(self, object_name: str, cursor: Cursor, context: SyncContext) -> Iterator[Page]:
        self._check_object(object_name)
        if object_name in FULL_REFRESH:
            yield from self._full_refresh(object_name, context)
            return
        spec = INCREMENTAL[object_name]
        normalizer = self._normalizer(spec, context)
        query = self._query(spec)
        if context.full or not cursor.initial_load_done:
            yield from self._first_load(spec, query, normalizer, cursor, context)
        else:
            yield from self._steady_state(spec, query, normalizer, cursor, context)

    def all_ids(self, object_name: str, context: SyncContext) -> Iterator[str]:
        self._check_object(object_name)
        if object_name in FULL_REFRESH:
            yield from self._full_refresh_ids(object_name)
            return
        spec = INCREMENTAL[object_name]
        if spec.history:
            yield from self._history_ids(spec)
            return
        for raw in self._list_all(spec, archived=False, properties=self._filter_properties(spec)):
            if self._kept(spec, raw):
                yield str(raw["id"])

    def preflight(self) -> list[Problem]:
        try:
            self.api.owners_page(after=None, archived=False)
        except HubSpotRequestRefused as refused:
            return [_problem_of(refused, "owners")]
        except HubSpotError as error:
            return [Problem(f"HubSpot connection {self.name!r}: cannot reach {self.config.base_url} ({error})",
                            "check base_url and the network, then run `kpi-agent config check --online` again")]
        problems: list[Problem] = []
        for hubspot_type in sorted({spec.hubspot_type for spec in INCREMENTAL.values()}):
            problems += self._property_problems(hubspot_type)
        problems += self._pipeline_problems()
        return problems

    def close(self) -> None:
        self.api.close()

    # -- first load and steady state -----------------------------------------------------------------

    def _first_load(self, spec: SyncedObject, query: Query, normalizer: Normalizer, cursor: Cursor,
                    context: SyncContext) -> Iterator[Page]:
        """Every record (changed within the lookback), by id, resumable from ``initial_last_id``."""
        now = _now(context)
        resuming = not context.full and cursor.initial_load_started_at is not None
        started = cursor.initial_load_started_at if resuming and cursor.initial_load_started_at else now
        after_id = _int_or_zero(cursor.initial_last_id) if resuming else 0
        since = now - context.initial_lookback if spec.lookback else None
        done = Cursor(stamp=started - context.overlap, initial_load_done=True, initial_load_started_at=started)
        for results, last_id, last in keyset.by_id(self._searcher(spec), query, after_id, since):
            progress = Cursor(initial_load_started_at=started, initial_last_id=str(last_id))
            yield self._page(spec, results, done if last else progress, normalizer)

    def _steady_state(self, spec: SyncedObject, query: Query, normalizer: Normalizer, cursor: Cursor,
                      context: SyncContext) -> Iterator[Page]:
        """Archived records, then the keyset from the cursor the engine hands in (its stamp already moved
        back by the overlap).  Cursors handed out never fall behind the stored one, ``stamp + overlap``:
        re-reading the overlap must not move the watermark back run after run."""
        start = Position(epoch_ms(cursor.stamp)) if cursor.stamp else Position(0)
        stored = Cursor(stamp=cursor.stamp + context.overlap if cursor.stamp else None, initial_load_done=True)
        floor = Position(epoch_ms(stored.stamp)) if stored.stamp else Position(0)
        if spec.reports_deletes:
            yield from self._archived(spec, stored, since=cursor.stamp)
        for results, position in keyset.changed_since(self._searcher(spec), query, start):
            reached = max(position, floor)
            out = Cursor(stamp=from_epoch_ms(reached.stamp_ms), last_id=str(reached.last_id) if reached.last_id
                         else None, initial_load_done=True)
            yield self._page(spec, results, out, normalizer)

    def _archived(self, spec: SyncedObject, cursor: Cursor, since: datetime | None) -> Iterator[Page]:
        """Records archived since ``since`` (archiving does not bump the stamp: search never shows it), as
        deletes; each page keeps ``cursor``."""
        after: str | None = None
        while True:
            answer = self.api.list_page(spec.hubspot_type, after=after, properties=["hs_object_id"], archived=True)
            deleted = [str(raw["id"]) for raw in answer.get("results") or []
                       if raw.get("id") and _archived_since(raw, since)]
            if deleted:
                yield Page(cursor=cursor, deleted_ids=deleted)
            after = _next_after(answer)
            if after is None:
                return

    def _searcher(self, spec: SyncedObject) -> keyset.Search:
        return lambda body: self.api.search(spec.hubspot_type, body)

    # -- one page ------------------------------------------------------------------------------------

    def _page(self, spec: SyncedObject, results: list[dict[str, Any]], cursor: Cursor,
              normalizer: Normalizer) -> Page:
        if spec.history and results:
            results = self._with_history(spec, results)
        related = self._related(spec, [str(raw["id"]) for raw in results if raw.get("id")])
        records: list[CrmRecord] = []
        quarantined: list[QuarantinedItem] = []
        for raw in results:
            try:
                records += spec.build(raw, related, normalizer, spec.stamp)
            except (BadRecord, ValueError) as bad:  # ValueError: a record class refusing a value
                quarantined.append(QuarantinedItem(source_id=str(raw.get("id") or ""),
                                                   reason=f"HubSpot {spec.hubspot_type}: {bad}", payload=raw))
        return Page(cursor=cursor, records=records, quarantined=quarantined)

    def _with_history(self, spec: SyncedObject, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's records read again with their property history (search does not return it)."""
        ids = [str(raw["id"]) for raw in results if raw.get("id")]
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), HISTORY_PAGE_MAX):
            found += self.api.batch_read(spec.hubspot_type, ids[start:start + HISTORY_PAGE_MAX],
                                         properties=spec.search_properties(), history=spec.history)
        return found

    def _related(self, spec: SyncedObject, ids: list[str]) -> Related:
        if not ids or not spec.associations:
            return Related()
        associations: dict[str, dict[str, list[str]]] = {}
        for to_type in spec.associations:
            for source, targets in self.api.associations(spec.hubspot_type, to_type, ids).items():
                associations.setdefault(source, {})[to_type] = _primary_first(targets)
        deal_created = self._deal_created(associations) if spec.first_deals else {}
        return Related(associations, deal_created)

    def _deal_created(self, associations: Mapping[str, Mapping[str, list[str]]]) -> dict[str, datetime]:
        """Creation instants of each record's first associated deal (a lead's conversion)."""
        deal_ids = sorted({targets["deals"][0] for targets in associations.values() if targets.get("deals")})
        created: dict[str, datetime] = {}
        for start in range(0, len(deal_ids), BATCH_READ_MAX):
            for raw in self.api.batch_read("deals", deal_ids[start:start + BATCH_READ_MAX], properties=["createdate"]):
                try:
                    moment = parse_instant((raw.get("properties") or {}).get("createdate") or raw.get("createdAt"),
                                           "createdate")
                except BadRecord:
                    continue
                if moment is not None and raw.get("id"):
                    created[str(raw["id"])] = moment
        return created

    # -- owners, teams, pipelines, stages ------------------------------------------------------------

    def _full_refresh(self, object_name: str, context: SyncContext) -> Iterator[Page]:
        done = Cursor(stamp=_now(context), initial_load_done=True)
        if object_name in ("teams", "owners"):
            owners = self._owners()
            if object_name == "teams":
                yield Page(cursor=done, records=normalize.team_records(owners))
                return
            yield self._owner_page(owners, done)
            return
        pipelines = self._configured_pipelines()
        if object_name == "pipelines":
            yield Page(cursor=done, records=[normalize.pipeline_record(pipeline) for pipeline in pipelines])
            return
        stages = [stage for pipeline in pipelines for stage in normalize.stage_records(pipeline)]
        yield Page(cursor=done, records=stages)

    def _owner_page(self, owners: list[dict[str, Any]], cursor: Cursor) -> Page:
        records: list[CrmRecord] = []
        quarantined: list[QuarantinedItem] = []
        excluded = set(self.config.exclude_owner_ids)
        for owner in owners:
            if str(owner.get("id")) in excluded:
                continue
            try:
                records.append(normalize.owner_record(owner))
            except (BadRecord, ValueError) as bad:
                quarantined.append(QuarantinedItem(str(owner.get("id") or ""), f"HubSpot owners: {bad}", owner))
        return Page(cursor=cursor, records=records, quarantined=quarantined)

    def _owners(self) -> list[dict[str, Any]]:
        """Active owners, then archived ones (deactivated users: kept as inactive reps, not deleted)."""
        owners: list[dict[str, Any]] = []
        for archived in (False, True):
            after: str | None = None
            while True:
                answer = self.api.owners_page(after=after, archived=archived)
                owners += [owner | {"archived": archived or owner.get("archived", False)}
                           for owner in answer.get("results") or []]
                after = _next_after(answer)
                if after is None:
                    break
        return owners

    def _configured_pipelines(self) -> list[dict[str, Any]]:
        pipelines = self.api.pipelines(DEAL_PIPELINE_TYPE)
        wanted = set(self._wanted_pipeline_ids(pipelines))
        return [pipeline for pipeline in pipelines if not wanted or str(pipeline.get("id")) in wanted]

    def _wanted_pipeline_ids(self, pipelines: list[dict[str, Any]] | None = None) -> list[str]:
        """The configured pipelines as HubSpot ids (config may give ids or labels); [] = all."""
        if not self.config.pipelines:
            return []
        if self._pipeline_ids is None:
            pipelines = pipelines if pipelines is not None else self.api.pipelines(DEAL_PIPELINE_TYPE)
            by_label = {str(item.get("label", "")).strip().lower(): str(item["id"]) for item in pipelines}
            ids = {str(item["id"]) for item in pipelines}
            resolved: list[str] = []
            for wanted in self.config.pipelines:
                found = wanted if wanted in ids else by_label.get(wanted.strip().lower())
                if found is None:
                    raise HubSpotConfigError(_unknown_pipeline(self.name, wanted, pipelines))
                resolved.append(found)
            self._pipeline_ids = resolved
        return self._pipeline_ids

    def _full_refresh_ids(self, object_name: str) -> Iterator[str]:
        if object_name == "teams":
            yield from (team.source_id for team in normalize.team_records(self._owners()))
        elif object_name == "owners":
            excluded = set(self.config.exclude_owner_ids)
            yield from (str(owner["id"]) for owner in self._owners() if str(owner["id"]) not in excluded)
        elif object_name == "pipelines":
            yield from (str(pipeline["id"]) for pipeline in self._configured_pipelines())
        else:
            yield from (str(stage["id"]) for pipeline in self._configured_pipelines()
                        for stage in pipeline.get("stages") or [])

    # -- queries, filters and settings ---------------------------------------------------------------

    def _query(self, spec: SyncedObject) -> Query:
        filters: list[dict[str, Any]] = []
        pipelines = self._wanted_pipeline_ids() if spec.pipeline_property else []
        if pipelines:
            filters.append({"propertyName": spec.pipeline_property, "operator": "IN", "values": pipelines})
        if spec.owner_property and self.config.exclude_owner_ids:
            filters.append({"propertyName": spec.owner_property, "operator": "NOT_IN",
                            "values": list(self.config.exclude_owner_ids)})
        extra = (self._region_property(),) if spec.hubspot_type == "companies" else ()
        properties = spec.search_properties(tuple(name for name in extra if name))
        return Query(spec.stamp, properties, filters, self.page_size)

    def _filter_properties(self, spec: SyncedObject) -> list[str]:
        return [name for name in (spec.pipeline_property, spec.owner_property) if name] or ["hs_object_id"]

    def _kept(self, spec: SyncedObject, raw: Mapping[str, Any]) -> bool:
        """The search filters, applied to a listed record (the list endpoint cannot filter)."""
        props = raw.get("properties") or {}
        pipelines = self._wanted_pipeline_ids() if spec.pipeline_property else []
        if pipelines and str(props.get(spec.pipeline_property)) not in pipelines:
            return False
        return not (spec.owner_property and str(props.get(spec.owner_property)) in set(self.config.exclude_owner_ids))

    def _list_all(self, spec: SyncedObject, *, archived: bool, properties: Sequence[str],
                  history: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        after: str | None = None
        limit = HISTORY_PAGE_MAX if history else LIST_PAGE_MAX
        while True:
            answer = self.api.list_page(spec.hubspot_type, after=after, properties=properties, history=history,
                                        archived=archived, limit=limit)
            yield from answer.get("results") or []
            after = _next_after(answer)
            if after is None:
                return

    def _history_ids(self, spec: SyncedObject) -> Iterator[str]:
        normalizer = self._normalizer(spec, SyncContext(self.name, "USD", "UTC", warn=log.warning))
        properties = self._filter_properties(spec)
        for raw in self._list_all(spec, archived=False, properties=properties, history=spec.history):
            if self._kept(spec, raw):
                try:
                    yield from (record.source_id for record in spec.build(raw, Related(), normalizer, spec.stamp))
                except BadRecord:
                    continue

    def _normalizer(self, spec: SyncedObject, context: SyncContext) -> Normalizer:
        return Normalizer(connection=self.name, timezone=ZoneInfo(context.timezone),
                          home_currency=context.home_currency, mapping=self.config.mapping, warn=context.warn,
                          region_property=self._region_property(context) if spec.hubspot_type == "companies" else None,
                          option_labels=self._labels() if spec.hubspot_type == "calls" else {},
                          warned=self._warned)

    def _region_property(self, context: SyncContext | None = None) -> str | None:
        """The configured region property, if companies have it (else one warning, and no region)."""
        name = self.config.mapping.region_property
        if not name:
            return None
        if name in self._names("companies"):
            return name
        if context is not None and f"region:{name}" not in self._warned:
            self._warned.add(f"region:{name}")
            context.warn(_missing_property(self.name, "companies", name, "mapping.region_property",
                                           self._names("companies")) + "; accounts are synced without a region")
        return None

    def _names(self, hubspot_type: str) -> set[str]:
        if hubspot_type not in self._property_names:
            self._property_names[hubspot_type] = {str(item.get("name")) for item in self.api.properties(hubspot_type)}
        return self._property_names[hubspot_type]

    def _labels(self) -> dict[str, dict[str, str]]:
        """Option labels of the call outcome property (its values are GUIDs)."""
        if self._option_labels is None:
            try:
                definitions = self.api.properties("calls")
            except HubSpotRequestRefused:
                definitions = []
            self._option_labels = {
                str(item["name"]): {str(option.get("value")): str(option.get("label"))
                                    for option in item.get("options") or []}
                for item in definitions if item.get("name") == "hs_call_disposition"}
        return self._option_labels

    def _check_object(self, object_name: str) -> None:
        if object_name not in OBJECT_ORDER:
            raise ValueError(f"HubSpot connection {self.name!r} has no object {object_name!r}: use one of "
                             f"{', '.join(OBJECT_ORDER)}")

    # -- preflight -----------------------------------------------------------------------------------

    def _property_problems(self, hubspot_type: str) -> list[Problem]:
        try:
            names = self._names(hubspot_type)
        except HubSpotRequestRefused as refused:
            return [_problem_of(refused, hubspot_type)]
        problems = []
        needed = {spec.stamp for spec in INCREMENTAL.values() if spec.hubspot_type == hubspot_type}
        for name in sorted(needed - names):
            problems.append(Problem(_missing_property(self.name, hubspot_type, name, "the connector", names),
                                    "this portal's HubSpot API differs from what the connector reads; report it"))
        region = self.config.mapping.region_property
        if hubspot_type == "companies" and region and region not in names:
            problems.append(Problem(
                _missing_property(self.name, "companies", region, "mapping.region_property", names),
                f"set [connections.{self.name}.mapping] region_property to a company property that exists, or "
                "create it in HubSpot (Settings > Properties)"))
        return problems

    def _pipeline_problems(self) -> list[Problem]:
        try:
            self._wanted_pipeline_ids()
        except HubSpotConfigError as error:
            return [Problem(str(error), f"fix [connections.{self.name}] pipelines: give pipeline ids or labels")]
        except HubSpotRequestRefused as refused:
            return [_problem_of(refused, "deals")]
        return []


def _problem_of(refused: HubSpotRequestRefused, hubspot_type: str) -> Problem:
    if refused.status == 401:
        return Problem(str(refused), "give access_token a valid private app token (or env:VARIABLE naming it)")
    if refused.status == 403:
        scope = SCOPES.get(hubspot_type, "the read scope of " + hubspot_type)
        return Problem(str(refused), f"add the scope {scope} to the private app, then reinstall it")
    return Problem(str(refused), "check base_url points at the HubSpot API (https://api.hubapi.com)")


def _missing_property(connection: str, hubspot_type: str, name: str, who: str, names: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(names), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"HubSpot connection {connection!r}: {hubspot_type} has no property {name!r} (named by {who}){hint}"


def _unknown_pipeline(connection: str, wanted: str, pipelines: list[dict[str, Any]]) -> str:
    known = ", ".join(f"{item.get('id')} ({item.get('label')})" for item in pipelines)
    return f"HubSpot connection {connection!r}: pipelines names {wanted!r}, which is no deal pipeline (known: {known})"


def _primary_first(targets: list[dict[str, Any]]) -> list[str]:
    def rank(target: dict[str, Any]) -> tuple[int, int]:
        labels = {str(kind.get("label") or "") for kind in target.get("associationTypes") or []}
        object_id = str(target.get("toObjectId", ""))
        return (0 if PRIMARY_ASSOCIATION_LABEL in labels else 1, int(object_id) if object_id.isdigit() else 0)

    return list(dict.fromkeys(str(target.get("toObjectId")) for target in sorted(targets, key=rank)))


def _archived_since(raw: Mapping[str, Any], since: datetime | None) -> bool:
    if since is None:
        return True
    try:
        archived_at = parse_instant(raw.get("archivedAt"), "archivedAt")
    except BadRecord:
        return True
    return archived_at is None or archived_at >= since


def _next_after(answer: Mapping[str, Any]) -> str | None:
    after = ((answer.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _now(context: SyncContext) -> datetime:
    return context.now or datetime.now(UTC)


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _int_or_zero(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0
