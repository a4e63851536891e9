"""The HubSpot CRM API served from a neutral world: what hubspot-api-client 12 talks to.

`HubSpotService(world, only_crm=None, limits_scale=1.0, token=DEFAULT_TOKEN)` implements the sandbox's
`SandboxService`. A client connects with `hubspot.HubSpot(access_token=token, host=server.base_url)`.

Endpoints: CRM v3 objects (list, read, batch read, search) for deals, contacts, companies, line_items,
products, calls, emails, meetings, tasks, notes and leads; associations v4 (per object and batch read);
owners; pipelines and stages; properties. Wire facts are from the installed client's source and
`/work/shared/api-notes.md` §2; the OpenAPI files in `/work/shared/api-specs/hubspot/` check the shapes.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from connectors.sandbox.faults import Fault
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.hubspot import errors
from connectors.sandbox.hubspot.codecs import format_instant, format_number
from connectors.sandbox.hubspot.limits import TIERS, HubSpotLimits, RateLimiter, Verdict
from connectors.sandbox.hubspot.objects import (
    OWNER_ID_BASE,
    TEAM_ID_BASE,
    USER_ID_BASE,
    Catalog,
    ObjectSpec,
    Prop,
    WorldShape,
    build_catalog,
)
from connectors.sandbox.hubspot.search import SearchPlan, SearchRequestError, plan_search
from connectors.sandbox.world import World

DEFAULT_TOKEN = "pat-na1-5a9d1c2e-7b3f-4e60-9d8a-0c5e2f4b6a71"
SHARED_TABLES = frozenset({"products", "pipelines", "stages", "currency_rates"})
DEFAULT_LIST_LIMIT = 10  # the list endpoints' default page size (OpenAPI `limit` default)
DEFAULT_OWNER_LIMIT = 100
HISTORY_SOURCE = "CRM_UI"

OBJECT_PATH = re.compile(r"^/crm/v3/objects/(?P<type>[^/]+)(?:/(?P<rest>.+))?$")
ASSOC_OBJECT_PATH = re.compile(r"^/crm/v4/objects/(?P<from>[^/]+)/(?P<id>[^/]+)/associations/(?P<to>[^/]+)/?$")
ASSOC_BATCH_PATH = re.compile(r"^/crm/v4/associations/(?P<from>[^/]+)/(?P<to>[^/]+)/batch/read/?$")
OWNERS_PATH = re.compile(r"^/crm/v3/owners(?:/(?P<id>[^/]*))?/?$")
PIPELINES_PATH = re.compile(r"^/crm/v3/pipelines/(?P<type>[^/]+)(?:/(?P<pipeline>[^/]+)"
                            r"(?:/stages(?:/(?P<stage>[^/]+))?(?P<stages>/?))?)?/?$")
PROPERTIES_PATH = re.compile(r"^/crm/v3/properties/(?P<type>[^/]+)(?:/(?P<name>[^/]+))?/?$")


class RequestError(Exception):
    """Answer the current request with this HubSpot error."""

    def __init__(self, response: SandboxResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _bad_request(message: str, **extra: Any) -> RequestError:
    return RequestError(errors.error(400, message, **extra))


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _names(request: SandboxRequest, key: str) -> list[str]:
    """A list parameter sent repeated (`a=x&a=y`, what the client does) or comma-separated."""
    found: list[str] = []
    for value in request.query.get(key, []):
        found += [name.strip() for name in value.split(",") if name.strip()]
    return list(dict.fromkeys(found))


def _int_param(request: SandboxRequest, key: str, default: int) -> int:
    raw = request.first(key)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise _bad_request(f"Unable to process JSON: `{key}` must be an integer, not \"{raw}\"") from None


@dataclass
class _Page:
    rows: list[Mapping[str, Any]]
    next_after: str | None


class HubSpotService:
    """A HubSpot account (one private app token) over a world."""

    name = "hubspot"

    def __init__(self, world: World, *, only_crm: str | None = None, limits_scale: float = 1.0,
                 token: str = DEFAULT_TOKEN, limits: HubSpotLimits | None = None, tier: str = "professional"):
        self.world = world
        self.only_crm = only_crm
        self.token = token
        base = limits or TIERS[tier]
        self.nominal_limits = base  # what fault answers advertise even when limits are off
        self.limits = base.scaled(limits_scale)
        self.limiter = RateLimiter(self.limits)
        self.catalog: Catalog = build_catalog(self._world_shape())
        self._pending_mutations: list[Fault] = []
        self._pending_lock = threading.Lock()

    # -- the world -----------------------------------------------------------------------------------

    def _world_shape(self) -> WorldShape:
        pipelines = [dict(row) for row in self.world.execute("SELECT * FROM pipelines ORDER BY id")]
        stages = [dict(row) for row in self.world.execute("SELECT * FROM stages ORDER BY id")]
        return WorldShape(self.world.home_currency, pipelines, stages)

    def refresh_catalog(self) -> None:
        """Re-read pipelines and stages (after a test changes them on a running sandbox)."""
        self.catalog = build_catalog(self._world_shape())

    def _served(self, table: str, alias: str = "r") -> tuple[str, list[Any]]:
        """The condition that keeps to the rows this service serves (split worlds)."""
        if self.only_crm and table not in SHARED_TABLES:
            return f"{alias}.crm = ?", [self.only_crm]
        return "1=1", []

    # -- SandboxService ------------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if not self._authorized(request):
            return errors.unauthorized()
        if self._pending_mutations:
            self._run_pending_mutations(request)
        search = request.method == "POST" and request.path.rstrip("/").endswith("/search")
        verdict = self.limiter.check(search=search)
        if not verdict.allowed:
            return errors.rate_limited(verdict.policy or "TEN_SECONDLY_ROLLING", retry_after=verdict.retry_after,
                                       headers=verdict.headers)
        try:
            response = self._route(request)
        except RequestError as failure:
            response = failure.response
        return self._with_headers(response, verdict)

    def error_response(self, fault: Fault, request: SandboxRequest) -> SandboxResponse:
        if fault.kind in ("rate_limit", "search_rate_limit"):
            return self._rate_limit_fault(fault)
        status = fault.int_param("code", 500)
        headers = errors.retry_after_header(fault.retry_after(None))
        if status == 429:
            return self._rate_limit_fault(fault)
        if status == 401:
            return errors.unauthorized()
        return errors.error(status, fault.params.get("message"), headers=headers)

    def apply_fault(self, fault: Fault, request: SandboxRequest) -> SandboxResponse | None:
        if fault.kind in ("rate_limit", "search_rate_limit"):
            return self._rate_limit_fault(fault)
        if fault.kind == "same_stamp":
            self._same_stamp(request, fault.int_param("count", 2))
            return None
        if fault.kind == "mutate_between_pages":
            # Taken on whatever request matched; it acts on the next next-page request (see handle()).
            with self._pending_lock:
                self._pending_mutations.append(fault)
            return None
        return None

    def _authorized(self, request: SandboxRequest) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        return scheme.lower() == "bearer" and credential.strip() == self.token

    def _with_headers(self, response: SandboxResponse, verdict: Verdict) -> SandboxResponse:
        headers = dict(verdict.headers)
        if response.header("X-HubSpot-Correlation-Id") is None:
            headers["X-HubSpot-Correlation-Id"] = errors.new_correlation_id()
        response.headers = {**headers, **response.headers}
        return response

    def _rate_limit_fault(self, fault: Fault) -> SandboxResponse:
        retry_after = fault.retry_after(1)
        if fault.kind == "search_rate_limit":
            return errors.rate_limited("SECONDLY", retry_after=retry_after)
        policy = fault.params.get("policy", "TEN_SECONDLY_ROLLING")
        headers: dict[str, str] = {}
        if policy != "SECONDLY":
            # With the sandbox's own limits off (scale 0) a fault still shows the account's real budget.
            headers = self.limiter.current_headers() or RateLimiter(self.nominal_limits).current_headers()
        if policy == "TEN_SECONDLY_ROLLING" and headers:
            headers["X-HubSpot-RateLimit-Remaining"] = "0"
        if policy == "DAILY" and "X-HubSpot-RateLimit-Daily-Remaining" in headers:
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = "0"
        return errors.rate_limited(policy, retry_after=retry_after, headers=headers)

    # -- routing -------------------------------------------------------------------------------------

    def _route(self, request: SandboxRequest) -> SandboxResponse:
        path = request.path
        method = request.method
        if match := OBJECT_PATH.match(path):
            return self._route_object(request, self._object(unquote(match["type"])), match["rest"])
        if method == "GET" and (match := ASSOC_OBJECT_PATH.match(path)):
            return self._associations_page(request, self._object(unquote(match["from"])), unquote(match["id"]),
                                           self._object(unquote(match["to"])))
        if method == "POST" and (match := ASSOC_BATCH_PATH.match(path)):
            return self._associations_batch(request, self._object(unquote(match["from"])),
                                            self._object(unquote(match["to"])))
        if method == "GET" and (match := OWNERS_PATH.match(path)):
            owner_id = unquote(match["id"] or "")
            return self._owner(request, owner_id) if owner_id else self._owners(request)
        if method == "GET" and (match := PIPELINES_PATH.match(path)):
            return self._pipelines(match)
        if method == "GET" and (match := PROPERTIES_PATH.match(path)):
            return self._properties(request, self._object(unquote(match["type"])), match["name"])
        return errors.error(404, f"No route for {method} {path}: the sandbox serves CRM v3 objects, search, "
                            "associations v4, owners, pipelines and properties.", category="OBJECT_NOT_FOUND")

    def _object(self, name: str) -> ObjectSpec:
        spec = self.catalog.resolve(name)
        if spec is None:
            raise _bad_request(f"Unable to infer object type from: {name}")
        return spec

    def _route_object(self, request: SandboxRequest, spec: ObjectSpec, rest: str | None) -> SandboxResponse:
        method = request.method
        if rest is None and method == "GET":
            return self._list(request, spec)
        if rest == "search" and method == "POST":
            return self._search(request, spec)
        if rest == "batch/read" and method == "POST":
            return self._batch_read(request, spec)
        if rest and "/" not in rest and method == "GET":
            return self._get(request, spec, unquote(rest))
        return errors.error(405 if rest in (None, "search", "batch/read") else 404,
                            f"{method} {request.path} is not served by the sandbox (it is read-only).")

    # -- reading records -----------------------------------------------------------------------------

    def _props_for(self, spec: ObjectSpec, names: Sequence[str] | None) -> list[Prop]:
        """The properties an answer carries: the named ones that exist plus the always-returned ones."""
        wanted = list(names) if names else list(spec.default_props)
        wanted += [name for name in spec.always_props if name not in wanted]
        return [spec.props[name] for name in sorted(set(wanted)) if name in spec.props]

    def _select(self, spec: ObjectSpec, props: Sequence[Prop], where: str, params: Sequence[Any], *,
                archived: bool, order: str = "r.id ASC", limit: int | None = None,
                offset: int = 0) -> list[Mapping[str, Any]]:
        served, served_params = self._served(spec.table)
        columns = ["r.id AS _id", "r.created_at AS _created", "r.updated_at AS _updated"]
        columns += ["r.deleted AS _deleted", "r.deleted_at AS _deleted_at"]
        columns += [f"({prop.sql}) AS p{index}" for index, prop in enumerate(props)]
        sql = (f"SELECT {', '.join(columns)} FROM {spec.table} r {spec.joins} WHERE {spec.where} AND {served} "
               f"AND r.deleted = ? AND ({where}) ORDER BY {order}")
        all_params: list[Any] = [*served_params, 1 if archived else 0, *params]
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            all_params += [limit, offset]
        return self.world.execute(sql, all_params)

    def _count(self, spec: ObjectSpec, where: str, params: Sequence[Any]) -> int:
        served, served_params = self._served(spec.table)
        sql = (f"SELECT COUNT(*) FROM {spec.table} r {spec.joins} WHERE {spec.where} AND {served} "
               f"AND r.deleted = 0 AND ({where})")
        return int(self.world.execute(sql, [*served_params, *params])[0][0])

    def _record(self, spec: ObjectSpec, row: Mapping[str, Any], props: Sequence[Prop]) -> dict[str, Any]:
        properties = {prop.name: prop.codec.to_hubspot(row[f"p{index}"]) for index, prop in enumerate(props)}
        record: dict[str, Any] = {
            "id": spec.hubspot_id(row["_id"]),
            "properties": properties,
            "createdAt": format_instant(row["_created"]),
            "updatedAt": format_instant(row["_updated"]),
            "archived": bool(row["_deleted"]),
        }
        if row["_deleted"]:
            record["archivedAt"] = format_instant(row["_deleted_at"] or row["_updated"])
        return record

    def _records(self, spec: ObjectSpec, rows: Sequence[Mapping[str, Any]], request: SandboxRequest,
                 props: Sequence[Prop], *, history: Sequence[str], associations: Sequence[str]) -> list[dict]:
        records = [self._record(spec, row, props) for row in rows]
        world_ids = [int(row["_id"]) for row in rows]
        if history and records:
            histories = self._histories(spec, rows, history)
            for record, world_id in zip(records, world_ids, strict=True):
                record["propertiesWithHistory"] = histories[world_id]
        if associations and records:
            self._attach_v3_associations(spec, records, world_ids, associations)
        return records

    def _list(self, request: SandboxRequest, spec: ObjectSpec) -> SandboxResponse:
        history = _names(request, "propertiesWithHistory")
        page_max = self.limits.history_page_max if history else self.limits.list_page_max
        limit = min(max(_int_param(request, "limit", DEFAULT_LIST_LIMIT), 1), page_max)
        after = request.first("after")
        start = 0
        if after not in (None, ""):
            start = spec.world_id(after) or 0
            if not str(after).strip().isdigit():
                raise _bad_request(f"The paging cursor after={after} is not valid: send paging.next.after of the "
                                   "previous page.")
        props = self._props_for(spec, _names(request, "properties"))
        rows = self._select(spec, props, "r.id >= ?", [start], archived=_is_true(request.first("archived")),
                            limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        records = self._records(spec, rows, request, props, history=history,
                                associations=_names(request, "associations"))
        body: dict[str, Any] = {"results": records}
        if more:
            next_after = spec.hubspot_id(int(rows[-1]["_id"]) + 1)
            body["paging"] = {"next": {"after": next_after, "link": self._link(request, next_after)}}
        return SandboxResponse.json(body)

    def _link(self, request: SandboxRequest, after: str) -> str:
        query = [(key, value) for key, values in request.query.items() if key != "after" for value in values]
        host = request.headers.get("host", "api.hubapi.com")
        return f"http://{host}{request.path}?{urlencode([*query, ('after', after)])}"

    def _get(self, request: SandboxRequest, spec: ObjectSpec, object_id: str) -> SandboxResponse:
        id_property = request.first("idProperty")
        props = self._props_for(spec, _names(request, "properties"))
        archived = _is_true(request.first("archived"))
        if id_property and id_property != "hs_object_id":
            prop = spec.prop(id_property)
            if prop is None:
                raise _bad_request(f"Property \"{id_property}\" does not exist on {spec.name}: idProperty must "
                                   "name a unique property.")
            rows = self._select(spec, props, f"({prop.sql}) = ?", [object_id], archived=archived, limit=1)
        else:
            world_id = spec.world_id(object_id)
            rows = [] if world_id is None else self._select(spec, props, "r.id = ?", [world_id], archived=archived)
        if not rows:
            return errors.error(404, "resource not found", category="OBJECT_NOT_FOUND",
                                context={"id": [object_id], "type": [spec.singular.upper()]})
        records = self._records(spec, rows, request, props, history=_names(request, "propertiesWithHistory"),
                                associations=_names(request, "associations"))
        return SandboxResponse.json(records[0])

    def _batch_read(self, request: SandboxRequest, spec: ObjectSpec) -> SandboxResponse:
        started = self.world.now()
        body = self._json_body(request)
        inputs = body.get("inputs") or []
        if len(inputs) > 100:
            raise _bad_request(f"Batch read of {len(inputs)} inputs: the maximum is 100 per request.")
        props = self._props_for(spec, [str(name) for name in body.get("properties") or []])
        world_ids = [spec.world_id(str(item.get("id", ""))) for item in inputs if isinstance(item, Mapping)]
        wanted = [world_id for world_id in world_ids if world_id is not None]
        rows = []
        if wanted:
            marks = ", ".join("?" for _ in wanted)
            rows = self._select(spec, props, f"r.id IN ({marks})", wanted,
                                archived=_is_true(request.first("archived")))
        history = [str(name) for name in body.get("propertiesWithHistory") or []]
        records = self._records(spec, rows, request, props, history=history, associations=())
        answer: dict[str, Any] = {"status": "COMPLETE", "results": records, "startedAt": started,
                                  "completedAt": self.world.now()}
        found = {record["id"] for record in records}
        missing = [str(item.get("id")) for item in inputs if str(item.get("id")) not in found]
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message":
                                 f"Could not get some {spec.singular.upper()} objects, they may be deleted or "
                                 "not exist. Check that ids are valid.", "context": {"ids": missing},
                                 "errors": [], "links": {}}]
            return SandboxResponse.json(answer, 207)
        return SandboxResponse.json(answer)

    @staticmethod
    def _json_body(request: SandboxRequest) -> Mapping[str, Any]:
        try:
            body = request.json()
        except ValueError as error:
            raise _bad_request(f"Invalid input JSON on line 1, column 1: {error}") from None
        if not isinstance(body, Mapping):
            raise _bad_request("Invalid input JSON on line 1, column 1: expected an object")
        return body

    # -- search --------------------------------------------------------------------------------------

    def _search(self, request: SandboxRequest, spec: ObjectSpec) -> SandboxResponse:
        try:
            plan = plan_search(spec, self._json_body(request), self.limits.search)
        except SearchRequestError as failure:
            return errors.error(failure.status, failure.message, category="VALIDATION_ERROR",
                                sub_category=failure.sub_category, context=failure.context or None)
        return SandboxResponse.json(self._search_page(spec, plan))

    def _search_page(self, spec: ObjectSpec, plan: SearchPlan) -> dict[str, Any]:
        total = self._count(spec, plan.where_sql, plan.params)
        # The 10,000-result window: a page never reaches past it; the next cursor then points at it (400).
        limit = max(min(plan.limit, self.limits.search.total_max - plan.offset), 0)
        props = self._props_for(spec, plan.properties)
        rows = self._select(spec, props, plan.where_sql, plan.params, archived=False, order=plan.order_sql,
                            limit=limit, offset=plan.offset)
        body: dict[str, Any] = {"total": total,
                                "results": [self._record(spec, row, props) for row in rows]}
        next_offset = plan.offset + len(rows)
        if rows and next_offset < total:
            body["paging"] = {"next": {"after": str(next_offset)}}
        return body

    # -- property history ----------------------------------------------------------------------------

    def _histories(self, spec: ObjectSpec, rows: Sequence[Mapping[str, Any]],
                   names: Sequence[str]) -> dict[int, dict[str, list[dict[str, Any]]]]:
        """propertiesWithHistory for each row: newest value first, as HubSpot lists it."""
        props = [spec.props[name] for name in names if name in spec.props]
        world_ids = [int(row["_id"]) for row in rows]
        marks = ", ".join("?" for _ in world_ids)
        current = {int(row["_id"]): row for row in self._select(spec, props, f"r.id IN ({marks})", world_ids,
                                                                archived=bool(rows[0]["_deleted"]))}
        stage_rows: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
        if spec.name == "deals":
            for row in self.world.execute(
                    f"SELECT h.*, o.owner_rep_id FROM stage_history h JOIN opportunities o ON o.id = h.opportunity_id "
                    f"WHERE h.opportunity_id IN ({marks}) ORDER BY h.entered_at DESC, h.id DESC", world_ids):
                stage_rows[int(row["opportunity_id"])].append(row)
        result: dict[int, dict[str, list[dict[str, Any]]]] = {}
        for world_id in world_ids:
            row = current.get(world_id)
            entries: dict[str, list[dict[str, Any]]] = {}
            for index, prop in enumerate(props):
                value = prop.codec.to_hubspot(row[f"p{index}"]) if row is not None else None
                entries[prop.name] = self._history(spec, prop, value, row, stage_rows.get(world_id, []))
            result[world_id] = entries
        return result

    def _history(self, spec: ObjectSpec, prop: Prop, value: str | None, row: Mapping[str, Any] | None,
                 stage_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        column = {"dealstage": "stage_id", "amount": "amount", "closedate": "close_date",
                  "hs_deal_stage_probability": "probability"}.get(prop.name)
        if spec.name == "deals" and column and stage_rows:
            entries: list[dict[str, Any]] = []
            for history_row in stage_rows:
                stored = history_row[column]
                if stored is None:
                    continue
                shown = self._history_value(prop, stored)
                entries.append(self._history_entry(shown, history_row["entered_at"], history_row["owner_rep_id"]))
            # Unchanged values are not new versions: keep the oldest of each run (the list is newest first).
            collapsed = [entry for position, entry in enumerate(entries)
                         if position + 1 == len(entries) or entries[position + 1]["value"] != entry["value"]]
            if collapsed:
                return collapsed
        if value is None or row is None:
            return []
        # Without recorded changes the value is taken as set when the record was created.
        stamp = row["_updated"] if prop.name in ("hs_lastmodifieddate", "lastmodifieddate") else row["_created"]
        return [self._history_entry(value, stamp, None)]

    @staticmethod
    def _history_value(prop: Prop, stored: Any) -> str | None:
        if prop.name == "closedate":
            return format_instant(str(stored)[:10])
        if prop.name in ("amount", "hs_deal_stage_probability"):
            return format_number(stored)
        return prop.codec.to_hubspot(stored)

    @staticmethod
    def _history_entry(value: str | None, stamp: Any, owner_rep_id: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"value": value or "", "timestamp": format_instant(stamp),
                                 "sourceType": HISTORY_SOURCE}
        if owner_rep_id is not None:
            entry["sourceId"] = f"userId:{USER_ID_BASE + int(owner_rep_id)}"
            entry["updatedByUserId"] = USER_ID_BASE + int(owner_rep_id)
        return entry

    # -- associations --------------------------------------------------------------------------------

    def _pairs(self, spec: ObjectSpec, to_spec: ObjectSpec, world_ids: Sequence[int]) -> list[tuple[int, int]]:
        """(from world id, to world id) pairs whose target this service serves and has not archived."""
        association = spec.associations.get(to_spec.name)
        if association is None or not world_ids:
            return []
        marks = ", ".join("?" for _ in world_ids)
        sql = association.pairs_sql.replace("{ids}", marks)
        pairs = [(int(row[0]), int(row[1])) for row in
                 self.world.execute(sql, list(world_ids) * association.pairs_sql.count("{ids}"))
                 if row[1] is not None]
        targets = sorted({to_id for _from_id, to_id in pairs})
        if not targets:
            return []
        served, served_params = self._served(to_spec.table)
        live: set[int] = set()
        for chunk_start in range(0, len(targets), 900):
            chunk = targets[chunk_start:chunk_start + 900]
            target_marks = ", ".join("?" for _ in chunk)
            live |= {int(row[0]) for row in self.world.execute(
                f"SELECT r.id FROM {to_spec.table} r WHERE r.id IN ({target_marks}) AND r.deleted = 0 AND {served} "
                f"AND {to_spec.where}", [*chunk, *served_params])}
        return sorted({pair for pair in pairs if pair[1] in live})

    def _attach_v3_associations(self, spec: ObjectSpec, records: list[dict[str, Any]], world_ids: Sequence[int],
                                names: Iterable[str]) -> None:
        for name in names:
            to_spec = self.catalog.resolve(name)
            if to_spec is None or to_spec.name not in spec.associations:
                continue  # "If any of the specified associations do not exist, they will be ignored."
            association = spec.associations[to_spec.name]
            by_from: dict[int, list[int]] = defaultdict(list)
            for from_id, to_id in self._pairs(spec, to_spec, world_ids):
                by_from[from_id].append(to_id)
            for record, world_id in zip(records, world_ids, strict=True):
                targets = by_from.get(world_id)
                if not targets:
                    continue
                results = [{"id": to_spec.hubspot_id(to_id), "type": type_name}
                           for to_id in targets for type_name in association.v3_types]
                record.setdefault("associations", {})[to_spec.v3_association_key()] = {"results": results}

    def _association_types(self, spec: ObjectSpec, to_spec: ObjectSpec) -> list[dict[str, Any]]:
        return [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}
                for type_id, label in spec.associations[to_spec.name].types]

    def _associations_page(self, request: SandboxRequest, spec: ObjectSpec, object_id: str,
                           to_spec: ObjectSpec) -> SandboxResponse:
        limit = min(max(_int_param(request, "limit", self.limits.associations_page_max), 1),
                    self.limits.associations_page_max)
        offset = _int_param(request, "after", 0)
        world_id = spec.world_id(object_id)
        if to_spec.name not in spec.associations or world_id is None:
            return SandboxResponse.json({"results": []})
        targets = [to_id for _from, to_id in self._pairs(spec, to_spec, [world_id])]
        types = self._association_types(spec, to_spec)
        page = targets[offset:offset + limit]
        body: dict[str, Any] = {"results": [{"toObjectId": to_spec.hubspot_id(to_id), "associationTypes": types}
                                            for to_id in page]}
        if offset + limit < len(targets):
            next_after = str(offset + limit)
            body["paging"] = {"next": {"after": next_after, "link": self._link(request, next_after)}}
        return SandboxResponse.json(body)

    def _associations_batch(self, request: SandboxRequest, spec: ObjectSpec, to_spec: ObjectSpec) -> SandboxResponse:
        started = self.world.now()
        inputs = self._json_body(request).get("inputs") or []
        if len(inputs) > self.limits.batch_read_max:
            raise _bad_request(f"Batch read of {len(inputs)} inputs: the maximum is {self.limits.batch_read_max}.")
        ids = [str(item.get("id", "")) for item in inputs if isinstance(item, Mapping)]
        world_ids = {object_id: spec.world_id(object_id) for object_id in ids}
        by_from: dict[int, list[int]] = defaultdict(list)
        if to_spec.name in spec.associations:
            for from_id, to_id in self._pairs(spec, to_spec, [w for w in world_ids.values() if w is not None]):
                by_from[from_id].append(to_id)
        results, failures = [], []
        for object_id in ids:
            targets = by_from.get(world_ids[object_id] or -1)
            if targets:
                types = self._association_types(spec, to_spec)
                results.append({"from": {"id": object_id}, "to": [
                    {"toObjectId": to_spec.hubspot_id(to_id), "associationTypes": types} for to_id in targets]})
            else:
                # (no subCategory: the spec types it as an object whose real content is not documented)
                failures.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                 "context": {"fromObjectId": [object_id]},
                                 "message": f"No {to_spec.name} is associated with {spec.singular} {object_id}.",
                                 "errors": [], "links": {}})
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": self.world.now()}
        if failures:
            body["numErrors"] = len(failures)
            body["errors"] = failures
            return SandboxResponse.json(body, 207)
        return SandboxResponse.json(body)

    # -- owners --------------------------------------------------------------------------------------

    def _owner_rows(self, where: str, params: Sequence[Any]) -> list[Mapping[str, Any]]:
        served, served_params = self._served("reps")
        return self.world.execute(
            f"SELECT r.*, t.name AS team_name FROM reps r LEFT JOIN teams t ON t.id = r.team_id "
            f"WHERE {served} AND ({where}) ORDER BY r.id", [*served_params, *params])

    @staticmethod
    def _owner_json(row: Mapping[str, Any]) -> dict[str, Any]:
        archived = not row["active"] or bool(row["deleted"])
        first, _, last = str(row["name"]).partition(" ")
        user_id = USER_ID_BASE + int(row["id"])
        owner: dict[str, Any] = {
            "id": str(OWNER_ID_BASE + int(row["id"])), "email": row["email"], "type": "PERSON",
            "firstName": first, "lastName": last,
            "userId": None if archived else user_id, "userIdIncludingInactive": user_id,
            "createdAt": format_instant(row["created_at"]), "updatedAt": format_instant(row["updated_at"]),
            "archived": archived, "teams": [],
        }
        if row["team_id"] is not None and row["team_name"] is not None:
            owner["teams"] = [{"id": str(TEAM_ID_BASE + int(row["team_id"])), "name": row["team_name"],
                               "primary": True}]
        return owner

    def _owners(self, request: SandboxRequest) -> SandboxResponse:
        limit = min(max(_int_param(request, "limit", DEFAULT_OWNER_LIMIT), 1), self.limits.owners_page_max)
        archived = _is_true(request.first("archived"))
        after = request.first("after")
        start = (int(after) - OWNER_ID_BASE) if after and after.isdigit() else 0
        where = "r.id >= ? AND " + ("(r.active = 0 OR r.deleted = 1)" if archived else
                                    "(r.active = 1 AND r.deleted = 0)")
        params: list[Any] = [start]
        if email := request.first("email"):
            where += " AND LOWER(r.email) = LOWER(?)"
            params.append(email)
        rows = self._owner_rows(where, params)[:limit + 1]
        body: dict[str, Any] = {"results": [self._owner_json(row) for row in rows[:limit]]}
        if len(rows) > limit:
            next_after = str(OWNER_ID_BASE + int(rows[limit - 1]["id"]) + 1)
            body["paging"] = {"next": {"after": next_after, "link": self._link(request, next_after)}}
        return SandboxResponse.json(body)

    def _owner(self, request: SandboxRequest, owner_id: str) -> SandboxResponse:
        base = USER_ID_BASE if request.first("idProperty") == "userId" else OWNER_ID_BASE
        archived = _is_true(request.first("archived"))
        rows = []
        if owner_id.isdigit():
            state = "(r.active = 0 OR r.deleted = 1)" if archived else "(r.active = 1 AND r.deleted = 0)"
            rows = self._owner_rows(f"r.id = ? AND {state}", [int(owner_id) - base])
        if not rows:
            return errors.error(404, f"Owner {owner_id} was not found.", category="OBJECT_NOT_FOUND")
        return SandboxResponse.json(self._owner_json(rows[0]))

    # -- pipelines -----------------------------------------------------------------------------------

    def _pipelines(self, match: re.Match[str]) -> SandboxResponse:
        object_type = unquote(match["type"])
        spec = self._object(object_type)
        pipelines = self._pipeline_json() if spec.name == "deals" else []
        pipeline_id = match["pipeline"]
        if pipeline_id is None:
            return SandboxResponse.json({"results": pipelines})
        pipeline = next((item for item in pipelines if item["id"] == unquote(pipeline_id)), None)
        if pipeline is None:
            return errors.error(404, f"Unable to find pipeline {pipeline_id} for {object_type}.",
                                category="OBJECT_NOT_FOUND")
        stage_id = match["stage"]
        if stage_id is not None:
            stage = next((item for item in pipeline["stages"] if item["id"] == unquote(stage_id)), None)
            if stage is None:
                return errors.error(404, f"Unable to find stage {stage_id} in pipeline {pipeline_id}.",
                                    category="OBJECT_NOT_FOUND")
            return SandboxResponse.json(stage)
        if match["stages"] is not None:
            return SandboxResponse.json({"results": pipeline["stages"]})
        return SandboxResponse.json(pipeline)

    def _pipeline_json(self) -> list[dict[str, Any]]:
        shape = self.catalog.shape
        stages_by_pipeline: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
        for stage in sorted(shape.stages, key=lambda row: (row.get("sort_order") or 0, row["id"])):
            stages_by_pipeline[int(stage["pipeline_id"])].append(stage)
        answer = []
        ordered = sorted(shape.pipelines, key=lambda row: (row.get("display_order") or 0, row["id"]))
        for position, pipeline in enumerate(ordered):
            stages = []
            for order, stage in enumerate(stages_by_pipeline[int(pipeline["id"])]):
                probability = stage.get("probability")
                stages.append({
                    "id": self.catalog.stage_ids[int(stage["id"])], "label": stage["name"], "displayOrder": order,
                    "metadata": {"isClosed": "true" if stage.get("is_closed") else "false",
                                 "probability": repr(float(probability if probability is not None else 0.0))},
                    "createdAt": format_instant(stage.get("created_at") or "2020-01-01"),
                    "updatedAt": format_instant(stage.get("updated_at") or stage.get("created_at") or "2020-01-01"),
                    "archived": False, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"})
            answer.append({
                "id": self.catalog.pipeline_ids[int(pipeline["id"])], "label": pipeline["name"],
                "displayOrder": position, "stages": stages,
                "createdAt": format_instant(pipeline.get("created_at") or "2020-01-01"),
                "updatedAt": format_instant(pipeline.get("updated_at") or pipeline.get("created_at") or "2020-01-01"),
                "archived": False})
        return answer

    # -- properties ----------------------------------------------------------------------------------

    def _properties(self, request: SandboxRequest, spec: ObjectSpec, name: str | None) -> SandboxResponse:
        created = "2019-08-06T02:41:52.073Z"  # HubSpot-defined properties date from the portal's creation
        if name is not None:
            prop = spec.prop(unquote(name))
            if prop is None:
                return errors.error(404, f"Unable to find property {name} on object type {spec.type_id}.",
                                    category="OBJECT_NOT_FOUND")
            return SandboxResponse.json(self._property_json(spec, prop, 0, created))
        wanted = set(_names(request, "properties"))
        props = [prop for prop in sorted(spec.props.values(), key=lambda item: item.name)
                 if not wanted or prop.name in wanted]
        return SandboxResponse.json({"results": [self._property_json(spec, prop, index, created)
                                                 for index, prop in enumerate(props)]})

    @staticmethod
    def _property_json(spec: ObjectSpec, prop: Prop, order: int, created: str) -> dict[str, Any]:
        # HubSpot's default groups are named after the object: dealinformation, contactinformation, ...
        group = f"{spec.singular.replace('_', '')}information" if prop.group == "information" else prop.group
        return {
            "name": prop.name, "label": prop.label, "type": prop.type, "fieldType": prop.field_type,
            "description": "", "groupName": group,
            "options": [{"label": label, "value": value, "displayOrder": position, "hidden": False}
                        for position, (value, label) in enumerate(prop.options)],
            "displayOrder": order, "calculated": prop.calculated, "externalOptions": prop.name == "hubspot_owner_id",
            "hasUniqueValue": prop.name == "hs_object_id", "hidden": False, "hubspotDefined": True,
            "modificationMetadata": {"archivable": False, "readOnlyDefinition": True,
                                     "readOnlyValue": prop.read_only},
            "formField": False, "dataSensitivity": "non_sensitive",
            "createdAt": created, "updatedAt": created, "archived": False,
        }

    # -- faults that change the world ---------------------------------------------------------------

    def _queried_object(self, request: SandboxRequest) -> ObjectSpec | None:
        match = OBJECT_PATH.match(request.path)
        return self.catalog.resolve(unquote(match["type"])) if match else None

    def _is_next_page(self, request: SandboxRequest) -> bool:
        if request.method == "GET":
            return bool(request.first("after"))
        try:
            body = request.json()
        except ValueError:
            return False
        return isinstance(body, Mapping) and str(body.get("after") or "0") not in ("", "0")

    def _run_pending_mutations(self, request: SandboxRequest) -> None:
        """Apply waiting `mutate_between_pages` faults once a next-page request of an object arrives."""
        spec = self._queried_object(request)
        if spec is None or not self._is_next_page(request):
            return
        with self._pending_lock:
            faults, self._pending_mutations = self._pending_mutations, []
        for fault in faults:
            self._mutate(spec, request, fault.params.get("action", "update"), fault.int_param("count", 1))

    def _mutate(self, spec: ObjectSpec, request: SandboxRequest, action: str, count: int) -> None:
        """Change records the client already paged past (search: they shift later pages down; list:
        updates it will not see) or, deleting from a list, records later pages would have returned."""
        if request.method == "POST":
            plan = plan_search(spec, self._json_body(request), self.limits.search)
            rows = self._select(spec, [], plan.where_sql, plan.params, archived=False, order=plan.order_sql,
                                limit=min(count, plan.offset), offset=0)
        else:
            after = spec.world_id(request.first("after") or "") or 0
            if action == "delete":
                rows = self._select(spec, [], "r.id >= ?", [after], archived=False, limit=count)
            else:
                rows = self._select(spec, [], "r.id < ?", [after], archived=False, order="r.id DESC", limit=count)
        for row in rows:
            if action == "delete":
                self.world.delete(spec.table, int(row["_id"]))
            else:
                self.world.update(spec.table, int(row["_id"]), {}, bump=True)

    def _same_stamp(self, request: SandboxRequest, count: int) -> None:
        """Give `count` records of the queried object one modification stamp (the newest among them)."""
        spec = self._queried_object(request) or self.catalog.objects["deals"]
        rows = self._select(spec, [], "1=1", [], archived=False, order="r.updated_at ASC, r.id ASC", limit=count)
        if not rows:
            return
        stamp = max(str(row["_updated"]) for row in rows)
        for row in rows:
            self.world.update(spec.table, int(row["_id"]), {"updated_at": stamp}, bump=False)
