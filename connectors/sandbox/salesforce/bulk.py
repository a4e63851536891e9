"""Bulk API 2.0 query jobs, as simple-salesforce's `bulk2` drives them.

POST jobs/query creates a job (state UploadComplete); a worker thread runs the query into a cursor
(InProgress) and marks it JobComplete; GET jobs/query/{id}/results?maxRecords=&locator= streams one page of
CSV (header row in each page, every value quoted) with `Sforce-NumberOfRecords` and `Sforce-Locator`
(`null` on the last page). The operation `queryAll` includes soft-deleted records.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.sandbox.http import SandboxRequest, SandboxResponse

from .auth import INTEGRATION_USER_ID
from .cursors import Cursor
from .ids import InvalidIdError, decode_id, make_id
from .objects import SObjectType
from .values import salesforce_datetime

if TYPE_CHECKING:
    from .service import SalesforceService

JOB_PREFIX = "750"
RETAINED_RESULTS = 20  # completed jobs whose results stay downloadable; older ones expire (disk is bounded)
DEFAULT_MAX_RECORDS = 50_000
CSV_ROWS_PER_CHUNK = 1000
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}


@dataclass
class QueryJob:
    number: int
    operation: str
    query: str
    sobject: SObjectType
    version: str
    column_delimiter: str
    line_ending: str
    created: str
    state: str = "UploadComplete"
    cursor: Cursor | None = None
    error_message: str | None = None
    compiled: Any = None
    results_expired: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return make_id(JOB_PREFIX, self.number)

    def info(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.sobject.name,
            "createdById": INTEGRATION_USER_ID, "createdDate": self.created, "systemModstamp": self.created,
            "state": self.state, "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(self.version), "jobType": "V2Query", "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if self.state in ("JobComplete", "Failed", "Aborted"):
            body.update({"numberRecordsProcessed": self.cursor.total if self.cursor else 0, "retries": 0,
                         "totalProcessingTime": 1})
        if self.error_message:
            body["errorMessage"] = self.error_message
        return body


class BulkJobs:
    """The org's Bulk API 2.0 query jobs."""

    def __init__(self, service: SalesforceService) -> None:
        self.service = service
        self._numbers = itertools.count(1)
        self._jobs: dict[int, QueryJob] = {}
        self._lock = threading.Lock()
        # a small fixed pool: jobs queue as they do in a real org, and threads (with their connections) are reused
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="salesforce-bulk")

    @property
    def jobs_created(self) -> int:
        with self._lock:
            return len(self._jobs)

    def handle(self, request: SandboxRequest, version: str, parts: list[str]) -> SandboxResponse:
        from .service import ApiError, _require_method

        if not parts:
            if request.method == "POST":
                return self.create(request, version)
            _require_method(request, "GET", "POST")
            with self._lock:
                jobs = list(self._jobs.values())
            return SandboxResponse.json({"done": True, "records": [job.info() for job in jobs],
                                         "nextRecordsUrl": None})
        job = self._job(parts[0])
        if len(parts) == 1:
            if request.method == "GET":
                return SandboxResponse.json(job.info())
            if request.method == "DELETE":
                self._delete(job)
                return SandboxResponse(204)
            if request.method == "PATCH":
                return self._patch(request, job)
            _require_method(request, "GET", "PATCH", "DELETE")
        if len(parts) == 2 and parts[1] == "results":
            _require_method(request, "GET")
            return self.results(request, job)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    # -- jobs
    def create(self, request: SandboxRequest, version: str) -> SandboxResponse:
        from .service import ApiError

        try:
            body = request.json()
        except ValueError:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}. Use query or queryAll.")
        soql = body.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise ApiError(400, "INVALIDJOB", "InvalidJob : query is required for query jobs")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in DELIMITERS or line_ending not in LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : unsupported columnDelimiter {delimiter!r} or "
                                              f"lineEnding {line_ending!r}")
        compiled = self.service.compile(soql, include_deleted=operation == "queryAll")
        if compiled.kind != "records" or compiled.offset:
            raise ApiError(400, "API_ERROR", "Aggregate queries, COUNT() and OFFSET are not supported by "
                                             "Bulk API 2.0 query jobs")
        created = salesforce_datetime(self.service.world.now()) or ""
        job = QueryJob(next(self._numbers), operation, soql, compiled.sobject, version, delimiter, line_ending,
                       created, compiled=compiled)
        with self._lock:
            self._jobs[job.number] = job
        self.service._run_pending("same_stamp", compiled.sobject)
        self._workers.submit(self._run, job)
        return SandboxResponse.json(job.info())

    def _run(self, job: QueryJob) -> None:
        job.state = "InProgress"
        try:
            cursor, _ = self.service.cursors.open(job.compiled, include_deleted=job.operation == "queryAll",
                                                  counted=False)
            if job.state == "Aborted":
                self.service.cursors.release(cursor)
            else:
                job.cursor = cursor
                job.state = "JobComplete"
                self._expire_old_results()
        except Exception as error:  # the query failed in the world store: the job fails, as for real
            job.error_message = f"{type(error).__name__}: {error}"
            job.state = "Failed"
        finally:
            job.done.set()

    def _expire_old_results(self) -> None:
        with self._lock:
            holding = [job for job in self._jobs.values() if job.cursor is not None]
            expired = holding[:-RETAINED_RESULTS] if len(holding) > RETAINED_RESULTS else []
        for job in expired:
            cursor, job.cursor = job.cursor, None
            job.results_expired = True
            if cursor is not None:
                self.service.cursors.release(cursor)

    def _job(self, job_id: str) -> QueryJob:
        from .service import ApiError

        try:
            decoded = decode_id(job_id)
        except InvalidIdError:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist") from None
        with self._lock:
            job = self._jobs.get(decoded.number) if decoded.prefix == JOB_PREFIX else None
        if job is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def _delete(self, job: QueryJob) -> None:
        with self._lock:
            self._jobs.pop(job.number, None)
        if job.cursor is not None:
            self.service.cursors.release(job.cursor)

    def _patch(self, request: SandboxRequest, job: QueryJob) -> SandboxResponse:
        from .service import ApiError

        try:
            state = request.json().get("state")
        except (ValueError, AttributeError):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None
        if state != "Aborted":
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : a query job can only be set to Aborted, not {state}")
        if job.state in ("JobComplete", "Failed"):
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Job {job.id} is already {job.state}")
        job.state = "Aborted"
        return SandboxResponse.json(job.info())

    # -- results
    def results(self, request: SandboxRequest, job: QueryJob) -> SandboxResponse:
        from .service import ApiError

        if job.results_expired:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : the results of job {job.id} have expired")
        if job.state != "JobComplete" or job.cursor is None:
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : Job {job.id} is not complete: its state is {job.state}")
        if job.version != request.path.split("/")[3][1:]:
            raise ApiError(409, "INVALIDJOB", "InvalidJob : results must be fetched with the API version the job "
                                              f"was created with ({job.version})")
        max_records = _positive_int(request.first("maxRecords"), DEFAULT_MAX_RECORDS, "maxRecords")
        position = _decode_locator(request.first("locator"))
        self.service._run_pending("mutate_between_pages", job.sobject, job.cursor, position)
        self.service._run_pending("same_stamp", job.sobject)
        cursors = self.service.cursors
        count, last = cursors.page_bounds(job.cursor, position, max_records)
        more = count == max_records and last < job.cursor.total
        headers = {
            "Content-Type": "text/csv",
            "Sforce-NumberOfRecords": str(count),
            "Sforce-Locator": _encode_locator(last) if more else "null",
        }
        return SandboxResponse(200, self._csv(job, position, last, count), headers)

    def _csv(self, job: QueryJob, after: int, upto: int, count: int) -> Iterator[bytes]:
        compiled = job.compiled
        cursor = job.cursor
        assert cursor is not None
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=DELIMITERS[job.column_delimiter],
                            lineterminator=LINE_ENDINGS[job.line_ending], quoting=csv.QUOTE_ALL)
        writer.writerow([column.header for column in compiled.columns])
        position = after
        remaining = count
        while remaining > 0:
            rows = self.service.cursors.page(cursor, position, min(CSV_ROWS_PER_CHUNK, remaining), upto=upto)
            if not rows:
                break
            for row in rows:
                writer.writerow([_csv_value(value) for value in compiled.csv_row(row)])
            position = rows[-1]["cursor_position"]
            remaining -= len(rows)
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode("utf-8")

    def fault_target(self, request: SandboxRequest, parts: list[str]) -> tuple[SObjectType, Cursor | None, int] | None:
        """The object (and cursor position) a bulk request is about, for data faults."""
        if not parts:
            try:
                soql = request.json().get("query")
            except (ValueError, AttributeError):
                return None
            return (self.service._object_of(soql), None, 0) if soql else None
        job = self._job(parts[0])
        if len(parts) == 2 and parts[1] == "results" and job.cursor is not None:
            locator = request.first("locator")
            if locator and locator != "null":
                return job.sobject, job.cursor, _decode_locator(locator)
            return job.sobject, None, 0
        return job.sobject, None, 0


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode_locator(position: int) -> str:
    # real locators are the offset in base64 without padding ("MTAwMDA" is 10000)
    return base64.b64encode(str(position).encode()).decode().rstrip("=")


def _decode_locator(locator: str | None) -> int:
    from .service import ApiError

    if not locator or locator == "null":
        return 0
    try:
        return int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None


def _positive_int(text: str | None, default: int, name: str) -> int:
    from .service import ApiError

    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) <= 0:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : {name} must be a positive whole number, not {text}")
    return int(text)
