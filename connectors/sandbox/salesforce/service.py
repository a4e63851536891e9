"""The Salesforce sandbox service: REST API (query, queryAll, sobjects, limits), Bulk API 2.0 query jobs,
logins, the daily API request budget, and Salesforce's own faults.

    service = SalesforceService(world)                       # credentials: SalesforceCredentials.default()
    with SandboxServer(service, tls=ensure_test_ca(directory)) as server:
        session = requests.Session(); session.verify = str(tls.ca_cert)
        sf = Salesforce(username=..., password=..., security_token=..., session=session,
                        domain=f"127.0.0.1:{server.port}/sfauth")

Every answer under /services/data carries `Sforce-Limit-Info: api-usage=N/M`; errors are JSON arrays of
{message, errorCode}, so simple-salesforce raises the exception it raises against the real org.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.sandbox.faults import Fault
from connectors.sandbox.http import SandboxRequest, SandboxResponse
from connectors.sandbox.world import World

from . import describe
from .auth import (
    SOAP_PATH,
    TOKEN_PATH,
    LoginEndpoints,
    SalesforceCredentials,
    SessionStore,
    bearer_token,
    oauth_error,
    soap_fault,
)
from .bulk import BulkJobs
from .cursors import Cursor, CursorStore
from .ids import InvalidIdError, decode_id, make_id
from .objects import SObjectType, build_objects, key_prefixes
from .query import CompiledQuery, QueryContext, compile_query, resolve_object
from .soql import SoqlError, parse
from .values import parse_instant, salesforce_datetime, world_instant

DAILY_API_REQUESTS = 15_000
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000
OPEN_CURSORS_PER_USER = 10
UNLIMITED_OPEN_CURSORS = 1000
LOCATOR_PREFIX = "01g"
DATA_PATH = re.compile(r"^/services/data/?$|^/services/data/v(?P<version>\d+\.\d+)(?P<rest>/.*)?$")
LATEST_VERSION = "62.0"


class ApiError(Exception):
    """An answer of the REST API's error form: status and a JSON array of {message, errorCode}."""

    def __init__(self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def response(self) -> SandboxResponse:
        return error_body(self.status, self.error_code, self.message, self.headers)


def error_body(status: int, error_code: str, message: str, headers: dict[str, str] | None = None) -> SandboxResponse:
    return SandboxResponse.json([{"message": message, "errorCode": error_code}], status=status, headers=headers)


NOT_FOUND_MESSAGE = "The requested resource does not exist"
GENERIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "The request couldn't be understood."),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", NOT_FOUND_MESSAGE),
    405: ("METHOD_NOT_ALLOWED", "HTTP Method not allowed"),
    409: ("CONFLICT", "The request couldn't be completed due to a conflict with the current state of the resource."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "The entity in the request is in a format that's not supported."),
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact "
                               "support: 1234567890-12345 (-1234567890)"),
    502: ("SERVER_UNAVAILABLE", "Bad gateway."),
    503: ("SERVER_UNAVAILABLE", "Server is unavailable. Please try again later."),
    504: ("REQUEST_RUNNING_TOO_LONG", "Your request was running for too long, and has been stopped."),
}


class SalesforceService:
    """Salesforce, as simple-salesforce meets it, over a sandbox world."""

    name = "salesforce"

    def __init__(self, world: World, *, only_crm: str | None = None, limits_scale: float = 1.0,
                 credentials: SalesforceCredentials | None = None,
                 session_seconds: float = 2 * 60 * 60) -> None:
        if limits_scale < 0:
            raise ValueError(f"limits_scale {limits_scale} must be 0 (limits off) or more")
        self.world = world
        self.only_crm = only_crm
        self.limits_scale = limits_scale
        self.credentials = credentials or SalesforceCredentials.default()
        self.sessions = SessionStore(session_seconds)
        self.timezone = _zone(world.timezone)
        self.objects = build_objects(world.home_currency, world.timezone)
        self.prefixes = key_prefixes(self.objects.values())
        self.login = LoginEndpoints(self.credentials, self.sessions, world.home_currency, world.timezone)
        # limits off still bounds abandoned cursors, which hold disk until they idle out
        max_open = (UNLIMITED_OPEN_CURSORS if limits_scale == 0
                    else max(1, math.ceil(OPEN_CURSORS_PER_USER * limits_scale)))
        self.cursors = CursorStore(world, max_open=max_open)
        self.bulk = BulkJobs(self)
        self.api_limit = DAILY_API_REQUESTS if limits_scale == 0 else int(DAILY_API_REQUESTS * limits_scale)
        self.api_limit_enforced = limits_scale != 0
        self._api_used = 0
        self._usage_lock = threading.Lock()
        self._pending_faults: list[Fault] = []
        self._pending_lock = threading.Lock()
        self._picklist_cache: dict[str, list[str]] = {}

    # -- SandboxService ------------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if LoginEndpoints.is_login_path(request.path):
            return self.login.handle(request)
        match = DATA_PATH.match(request.path)
        if match is None:
            return error_body(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        version = match.group("version")
        if version is None:
            return SandboxResponse.json(_versions())
        if self.sessions.find(bearer_token(request)) is None:
            return error_body(401, "INVALID_SESSION_ID", "Session expired or invalid")
        refused = self._spend_api_request()
        if refused is not None:
            return refused
        try:
            response = self._route(request, version, (match.group("rest") or "/").rstrip("/") or "/")
        except ApiError as error:
            response = error.response()
        response.headers["Sforce-Limit-Info"] = self.limit_info()
        return response

    def error_response(self, fault: Fault, request: SandboxRequest) -> SandboxResponse:
        code = fault.int_param("code", 500)
        headers = _retry_after(fault)
        if TOKEN_PATH.search(request.path):
            # the token endpoint's transient failure, as Salesforce words it
            response = oauth_error("unknown_error", fault.params.get("message", "retry your request"), code)
        elif SOAP_PATH.search(request.path):
            response = soap_fault("UNKNOWN_EXCEPTION", fault.params.get("message", "An unexpected error occurred"),
                                  status=code)
        else:
            error_code, message = GENERIC_ERRORS.get(code, ("UNKNOWN_EXCEPTION", f"HTTP {code}"))
            response = error_body(code, error_code, fault.params.get("message", message))
            if request.path.startswith("/services/data/v"):
                response.headers["Sforce-Limit-Info"] = self.limit_info()
        response.headers.update(headers)
        return response

    def apply_fault(self, fault: Fault, request: SandboxRequest) -> SandboxResponse | None:
        kind = fault.kind
        login = LoginEndpoints.is_login_path(request.path)
        if kind == "session_expired":
            if login:
                return None  # a login request has no session to expire
            self.sessions.revoke(bearer_token(request))
            return error_body(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if kind == "request_limit":
            return error_body(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.",
                              {"Sforce-Limit-Info": self.limit_info()})
        if kind == "unavailable":
            return error_body(503, "SERVER_UNAVAILABLE", "Server is unavailable. Please try again later.",
                              _retry_after(fault))
        if kind in ("mutate_between_pages", "same_stamp"):
            if not self._apply_data_fault(fault, request):
                with self._pending_lock:
                    self._pending_faults.append(fault)
            return None
        return None

    # -- limits --------------------------------------------------------------------------------------

    def limit_info(self) -> str:
        with self._usage_lock:
            return f"api-usage={self._api_used}/{self.api_limit}"

    @property
    def api_requests_used(self) -> int:
        with self._usage_lock:
            return self._api_used

    def _spend_api_request(self) -> SandboxResponse | None:
        with self._usage_lock:
            if self.api_limit_enforced and self._api_used >= self.api_limit:
                info = f"api-usage={self._api_used}/{self.api_limit}"
                return error_body(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.",
                                  {"Sforce-Limit-Info": info})
            self._api_used += 1
        return None

    def limits_body(self) -> dict[str, Any]:
        used = self.api_requests_used
        scale = self.limits_scale or 1.0

        def limit(maximum: int, remaining: int | None = None) -> dict[str, int]:
            return {"Max": maximum, "Remaining": maximum if remaining is None else remaining}

        return {
            "ConcurrentAsyncGetReportInstances": limit(200),
            "ConcurrentSyncReportRuns": limit(20),
            "DailyApiRequests": limit(self.api_limit, max(0, self.api_limit - used)),
            "DailyAsyncApexExecutions": limit(250000),
            "DailyBulkApiBatches": limit(int(15000 * scale)),
            "DailyBulkV2QueryFileStorageMB": limit(976562),
            "DailyBulkV2QueryJobs": limit(int(10000 * scale), max(0, int(10000 * scale) - self.bulk.jobs_created)),
            "DataStorageMB": limit(1024, 1024),
            "FileStorageMB": limit(1024, 1024),
            "HourlyODataCallout": limit(10000),
            "SingleEmail": limit(5000),
        }

    # -- routing -------------------------------------------------------------------------------------

    def _route(self, request: SandboxRequest, version: str, rest: str) -> SandboxResponse:
        parts = [part for part in rest.split("/") if part]
        if not parts:
            return SandboxResponse.json(_resources(version))
        head = parts[0]
        if head in ("query", "queryAll"):
            _require_method(request, "GET")
            include_deleted = head == "queryAll"
            if len(parts) == 1:
                return self.query(request, version, include_deleted)
            if len(parts) == 2:
                return self.query_more(request, version, parts[1])
        elif head == "limits" and len(parts) == 1:
            _require_method(request, "GET")
            return SandboxResponse.json(self.limits_body())
        elif head == "sobjects":
            return self._sobjects(request, version, parts[1:])
        elif head == "jobs" and len(parts) >= 2 and parts[1] == "query":
            return self.bulk.handle(request, version, parts[2:])
        elif head == "jobs" and len(parts) >= 2 and parts[1] == "ingest":
            raise ApiError(400, "NOT_SUPPORTED_BY_SANDBOX", "Bulk API 2.0 ingest jobs are not supported by the "
                           "Salesforce sandbox (connectors/sandbox/salesforce): it serves reads only.")
        raise ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)

    def _sobjects(self, request: SandboxRequest, version: str, parts: list[str]) -> SandboxResponse:
        if not parts:
            _require_method(request, "GET")
            return SandboxResponse.json(describe.describe_global(self.objects.values(), version))
        sobject = self.objects.get(parts[0].lower())
        if sobject is None:
            raise ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        if request.method not in ("GET", "HEAD"):
            raise ApiError(400, "NOT_SUPPORTED_BY_SANDBOX", f"{request.method} on {sobject.name} is not supported by "
                           "the Salesforce sandbox (connectors/sandbox/salesforce): it serves reads only.")
        if len(parts) == 1:
            return SandboxResponse.json({"objectDescribe": describe.global_entry(sobject, version), "recentItems": []})
        if len(parts) == 2 and parts[1] == "describe":
            return SandboxResponse.json(describe.describe_object(sobject, self.objects.values(), version,
                                                                 self._world_picklist))
        if len(parts) == 2 and parts[1] in ("deleted", "updated"):
            return self._replication(request, sobject, parts[1])
        if len(parts) == 2:
            return self._record(request, version, sobject, parts[1])
        raise ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)

    # -- queries -------------------------------------------------------------------------------------

    def context(self, include_deleted: bool) -> QueryContext:
        return QueryContext(objects=self.objects, prefixes=self.prefixes, only_crm=self.only_crm,
                            include_deleted=include_deleted, now=parse_instant(self.world.now()),
                            timezone=self.timezone)

    def compile(self, soql: str, include_deleted: bool) -> CompiledQuery:
        try:
            return compile_query(parse(soql), self.context(include_deleted))
        except SoqlError as error:
            raise ApiError(400, error.error_code, error.render(soql)) from None

    def query(self, request: SandboxRequest, version: str, include_deleted: bool) -> SandboxResponse:
        soql = request.first("q")
        if soql is None or not soql.strip():
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        compiled = self.compile(soql, include_deleted)
        self._run_pending("same_stamp", compiled.sobject)
        batch = _batch_size(request)
        if compiled.kind == "count":
            total = self.cursors.execute(compiled.count_sql(), compiled.params)[0][0]
            return SandboxResponse.json({"totalSize": int(total), "done": True, "records": []})
        if compiled.kind == "aggregate":
            row = self.cursors.execute(compiled.aggregate_sql(), compiled.params)[0]
            record = {"attributes": {"type": "AggregateResult"}}
            record.update({column.name: column.render(row[column.sql_alias]) for column in compiled.columns})
            return SandboxResponse.json({"totalSize": 1, "done": True, "records": [record]})
        rows = self.cursors.execute(compiled.records_sql(extra_limit=batch + 1), compiled.params)
        if len(rows) <= batch:
            return SandboxResponse.json({"totalSize": len(rows), "done": True,
                                         "records": [compiled.record(row, version) for row in rows]})
        cursor, _ = self.cursors.open(compiled, include_deleted=include_deleted)
        return self._page(cursor, 0, batch, version)

    def query_more(self, request: SandboxRequest, version: str, locator: str) -> SandboxResponse:
        cursor, position = self._cursor_from_locator(locator)
        self._run_pending("mutate_between_pages", cursor.compiled.sobject, cursor, position)
        self._run_pending("same_stamp", cursor.compiled.sobject)
        return self._page(cursor, position, _batch_size(request), version)

    def _page(self, cursor: Cursor, position: int, batch: int, version: str) -> SandboxResponse:
        rows = self.cursors.page(cursor, position, batch)
        last = rows[-1]["cursor_position"] if rows else cursor.total
        done = len(rows) < batch or last >= cursor.total
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done}
        if done:
            self.cursors.release(cursor)
        else:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{self.locator(cursor)}-{last}"
        body["records"] = [cursor.compiled.record(row, version) for row in rows]
        return SandboxResponse.json(body)

    @staticmethod
    def locator(cursor: Cursor) -> str:
        return make_id(LOCATOR_PREFIX, cursor.number)

    def _cursor_from_locator(self, locator: str) -> tuple[Cursor, int]:
        identifier, _, position_text = locator.partition("-")
        try:
            decoded = decode_id(identifier)
            position = int(position_text)
        except (InvalidIdError, ValueError):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator") from None
        cursor = self.cursors.get(decoded.number) if decoded.prefix == LOCATOR_PREFIX else None
        if cursor is None or not cursor.counted or position < 0:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return cursor, position

    # -- single records and replication ----------------------------------------------------------------

    def _record(self, request: SandboxRequest, version: str, sobject: SObjectType, record_id: str) -> SandboxResponse:
        try:
            decoded = decode_id(record_id)
        except InvalidIdError:
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: "
                                             f"{record_id}") from None
        if decoded.prefix != sobject.key_prefix:
            raise ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        wanted = request.first("fields")
        names = [name.strip() for name in wanted.split(",")] if wanted else [field.name for field in sobject.fields]
        record_id = make_id(sobject.key_prefix, decoded.number)
        soql = f"SELECT {', '.join(names)} FROM {sobject.name} WHERE Id = '{record_id}'"
        compiled = self.compile(soql, include_deleted=True)
        rows = self.cursors.execute(compiled.records_sql(), compiled.params)
        if not rows:
            raise ApiError(404, "NOT_FOUND", NOT_FOUND_MESSAGE)
        record = compiled.record(rows[0], version)
        if record.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return SandboxResponse.json(record)

    def _replication(self, request: SandboxRequest, sobject: SObjectType, which: str) -> SandboxResponse:
        start_text, end_text = request.first("start"), request.first("end")
        if not start_text or not end_text:
            raise ApiError(400, "MISSING_ARGUMENT", "start and end are required: ISO 8601 date-times")
        try:
            start, end = parse_instant(start_text), parse_instant(end_text)
        except ValueError:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end must be ISO 8601 date-times") from None
        if end < start:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "EndDate can not be before StartDate")
        if sobject.world_table is None or sobject.deleted_sql == "0" and which == "deleted":
            body: dict[str, Any] = {"deletedRecords": [], "earliestDateAvailable": salesforce_datetime(
                world_instant(start)), "latestDateCovered": salesforce_datetime(world_instant(end))}
            return SandboxResponse.json(body if which == "deleted" else {"ids": [], "latestDateCovered":
                                                                         body["latestDateCovered"]})
        base = [sobject.base_condition.replace("{t}", "t")] if sobject.base_condition else []
        params: list[Any] = []
        if self.only_crm and sobject.crm_column:
            base.append("t.crm = ?")
            params.append(self.only_crm)
        column = "t.deleted_at" if which == "deleted" else "t.updated_at"
        deleted = sobject.deleted_sql.replace("{t}", "t")
        base += [f"{column} >= ?", f"{column} < ?", deleted if which == "deleted" else f"NOT ({deleted})"]
        params += [world_instant(start), world_instant(end)]
        sql = (f"SELECT t.id, {column} AS stamp FROM {sobject.source} AS t WHERE {' AND '.join(base)} "
               f"ORDER BY {column}, t.id")
        rows = self.cursors.execute(sql, params)
        covered = salesforce_datetime(world_instant(end))
        if which == "deleted":
            return SandboxResponse.json({
                "deletedRecords": [{"id": make_id(sobject.key_prefix, row["id"]),
                                    "deletedDate": salesforce_datetime(row["stamp"])} for row in rows],
                "earliestDateAvailable": salesforce_datetime(world_instant(start)), "latestDateCovered": covered})
        return SandboxResponse.json({"ids": [make_id(sobject.key_prefix, row["id"]) for row in rows],
                                     "latestDateCovered": covered})

    def _world_picklist(self, sql: str) -> list[str]:
        if sql not in self._picklist_cache:
            rows = self.cursors.execute(sql)
            self._picklist_cache[sql] = list(dict.fromkeys(str(row[0]) for row in rows if row[0] is not None))
        return self._picklist_cache[sql]

    # -- faults that change the world ------------------------------------------------------------------

    def _apply_data_fault(self, fault: Fault, request: SandboxRequest) -> bool:
        """Apply now if the request says which object (and, for paging faults, which cursor)."""
        target = self._request_target(request)
        if target is None:
            return False
        sobject, cursor, position = target
        if fault.kind == "same_stamp":
            self.give_one_stamp(sobject, fault.int_param("count", 10))
            return True
        if cursor is None:
            return False
        self.mutate_between_pages(cursor, position, fault.params.get("action", "update"), fault.int_param("count", 1))
        return True

    def _request_target(self, request: SandboxRequest) -> tuple[SObjectType, Cursor | None, int] | None:
        match = DATA_PATH.match(request.path)
        if match is None or not match.group("version"):
            return None
        parts = [part for part in (match.group("rest") or "").split("/") if part]
        try:
            if parts and parts[0] in ("query", "queryAll"):
                if len(parts) == 2:
                    cursor, position = self._cursor_from_locator(parts[1])
                    return cursor.compiled.sobject, cursor, position
                soql = request.first("q")
                return (self._object_of(soql), None, 0) if soql else None
            if len(parts) >= 2 and parts[:2] == ["jobs", "query"]:
                return self.bulk.fault_target(request, parts[2:])
        except (ApiError, SoqlError):
            return None
        return None

    def _object_of(self, soql: str) -> SObjectType:
        parsed = parse(soql)
        return resolve_object(self.context(False), parsed.object_name, parsed.object_position)

    def _run_pending(self, kind: str, sobject: SObjectType, cursor: Cursor | None = None, position: int = 0) -> None:
        with self._pending_lock:
            due = [fault for fault in self._pending_faults if fault.kind == kind]
            if kind == "mutate_between_pages" and cursor is None:
                due = []
            for fault in due:
                self._pending_faults.remove(fault)
        for fault in due:
            if kind == "same_stamp":
                self.give_one_stamp(sobject, fault.int_param("count", 10))
            elif cursor is not None:
                self.mutate_between_pages(cursor, position, fault.params.get("action", "update"),
                                          fault.int_param("count", 1))

    def give_one_stamp(self, sobject: SObjectType, count: int) -> list[int]:
        """A mass update: `count` records of the object (lowest ids first) get one new modification stamp."""
        table = sobject.world_table
        if table is None or sobject.source != table:
            return []
        conditions = [sobject.base_condition.replace("{t}", "t")] if sobject.base_condition else []
        params: list[Any] = []
        if self.only_crm and sobject.crm_column:
            conditions.append("t.crm = ?")
            params.append(self.only_crm)
        conditions.append(f"NOT ({sobject.deleted_sql.replace('{t}', 't')})")
        rows = self.cursors.execute(f"SELECT t.id FROM {table} t WHERE {' AND '.join(conditions)} "
                                    f"ORDER BY t.id LIMIT ?", (*params, count))
        ids = [int(row[0]) for row in rows]
        stamp = self.world.now()
        for record_id in ids:
            self.world.update(table, record_id, {"updated_at": stamp}, bump=False)
        return ids

    def mutate_between_pages(self, cursor: Cursor, position: int, action: str, count: int) -> list[int]:
        """Change records this cursor pages through: half of them among those later pages will return, half
        among those earlier pages returned (all later ones when nothing was returned yet)."""
        table = cursor.sobject_table
        if table is None or cursor.compiled.sobject.source != table:
            return []
        earlier_count = min(count // 2, position)
        later = self.cursors.ids(cursor, after=position, limit=count - earlier_count)
        earlier = self.cursors.ids(cursor, upto=position, limit=count - len(later), descending=True)
        ids = later + earlier
        for record_id in ids:
            if action == "delete":
                if cursor.compiled.sobject.deleted_sql != "0":
                    self.world.delete(table, record_id)
            elif table == "opportunities":
                current = self.world.get(table, record_id)
                if current is not None and current["amount"] is not None:
                    changes = {"amount": round(current["amount"] * 1.1, 2)}
                    if current["amount_home"] is not None:
                        changes["amount_home"] = round(current["amount_home"] * 1.1, 2)
                    self.world.update(table, record_id, changes)
                else:
                    self.world.update(table, record_id, {})
            else:
                self.world.update(table, record_id, {})
        return ids


# ------------------------------------------------------------------------------------------------ helpers

def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"the world's timezone {name!r} is not an IANA time zone (e.g. Europe/Berlin)") from None


def _require_method(request: SandboxRequest, *methods: str) -> None:
    if request.method not in methods and not (request.method == "HEAD" and "GET" in methods):
        allowed = ",".join(methods + (("HEAD",) if "GET" in methods else ()))
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are {allowed}")


def _batch_size(request: SandboxRequest) -> int:
    """Sforce-Query-Options: batchSize=N, kept within Salesforce's 200..2000."""
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options, re.IGNORECASE)
    if not match:
        return DEFAULT_BATCH_SIZE
    return max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, int(match.group(1))))


def _retry_after(fault: Fault) -> dict[str, str]:
    value = fault.params.get("retry_after")
    return {"Retry-After": str(value)} if value not in (None, "", "none") else {}


def _versions() -> list[dict[str, str]]:
    return [{"label": label, "url": f"/services/data/v{version}", "version": version}
            for version, label in (("57.0", "Spring '23"), ("58.0", "Summer '23"), ("59.0", "Winter '24"),
                                   ("60.0", "Spring '24"), ("61.0", "Summer '24"), ("62.0", "Winter '25"))]


def _resources(version: str) -> dict[str, str]:
    base = f"/services/data/v{version}"
    return {name: f"{base}/{name}" for name in ("jobs", "limits", "query", "queryAll", "sobjects")}

