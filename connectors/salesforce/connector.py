"""The Salesforce connector: SOQL with keyset paging, Bulk API 2.0 for big first loads, deletes, quarantine.

Per object and run:

- **Steady state** (after the first load): one ``queryAll`` ordered by ``SystemModstamp, Id`` from the
  cursor — ``(SystemModstamp = S AND Id > I) OR SystemModstamp > S``, never an OFFSET — paged by the query
  locator.  Deleted rows (``IsDeleted``) come back as ``deleted_ids``.  A page's cursor never passes the
  newest stamp the object had when the run began: a record changed while we page comes back with its new
  stamp at its old position, and a cursor that jumped to it would skip the records between.
- **First load**: ``ORDER BY Id`` from ``initial_last_id`` (resumable), or — past ``bulk_threshold``
  records — a Bulk API 2.0 job whose id and results locator are the cursor.  Its watermark is the newest
  stamp at its start minus the overlap, so whatever changes during the load is read again afterwards.
- **Reference data** (roles, stages, currencies) is small and read whole each run.

Field names are checked against describe before any SOQL is built; configured ones that do not exist stop
the object with a message naming the config key.  Values in filters go through ``soql_string``/``soql_id``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import SalesforceConnection
from agent.sync.connector import Cursor, Page, Problem, SyncContext
from agent.sync.records import CrmRecord, QuarantinedItem
from agent.sync.retry import RetryPolicy, SyncStopped, policy_for
from connectors.salesforce.bulk import BulkJobGone, BulkReader
from connectors.salesforce.client import ConnectorError, SalesforceClient
from connectors.salesforce.objects import BY_NAME, OBJECTS, STAMP, Converter, SObject
from connectors.salesforce.values import BadValue, instant, soql_datetime, soql_id, soql_list, soql_string

log = logging.getLogger(__name__)

PAGE_SIZE_ENV = "KPI_AGENT_SALESFORCE_PAGE_SIZE"
BULK_PAGE_SIZE_ENV = "KPI_AGENT_SALESFORCE_BULK_PAGE_SIZE"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ConfigFieldError(ConnectorError):
    """A field named in the config does not exist on the object (describe says so)."""


class SalesforceConnector:
    """One ``[connections.<name>] kind = "salesforce"``."""

    def __init__(self, name: str, config: SalesforceConnection, context: SyncContext, *,
                 policy: RetryPolicy | None = None, page_size: int | None = None,
                 bulk_page_size: int | None = None) -> None:
        self.name = name
        self.config = config
        self.context = context
        self.client = SalesforceClient(name, config, policy or policy_for("salesforce"),
                                       page_size=page_size or _setting(config, "page_size", PAGE_SIZE_ENV, 2000))
        # 10,000 rows a results page (Salesforce allows up to 50,000 or so): the page, its records and the
        # one fetched ahead are what a load holds in memory, whatever the object's size.
        self.bulk_page_size = bulk_page_size or _setting(config, "bulk_page_size", BULK_PAGE_SIZE_ENV, 10_000)
        self.converter = Converter(config.mapping, ZoneInfo(context.timezone), context.home_currency,
                                   context.warn, context.now or datetime.now(UTC))
        self._describes: dict[str, dict[str, Any] | None] = {}
        self._fields: dict[str, list[str] | None] = {}
        self._types: dict[str, dict[str, str]] = {}
        if config.pipelines:
            context.warn(f"[connections.{name}] pipelines applies to HubSpot; Salesforce deals are filtered by "
                         "record_types")

    # -- the contract -------------------------------------------------------------------------------------

    def objects(self) -> Sequence[str]:
        return [sobject.name for sobject in OBJECTS]

    def fetch(self, object_name: str, cursor: Cursor, context: SyncContext) -> Iterator[Page]:
        sobject = self._sobject(object_name)
        if object_name == "Pipeline":
            yield Page(cursor=_done(context.now or EPOCH, context), records=[self.converter.pipeline()])
            return
        fields = self.fields_for(sobject)
        if fields is None:  # an object this org does not have (CurrencyType without multi-currency)
            yield Page(cursor=_done(context.now or EPOCH, context))
            return
        if sobject.snapshot:
            yield from self._snapshot(sobject, fields, context)
        elif not cursor.initial_load_done:
            yield from self._first_load(sobject, fields, cursor, context)
        else:
            yield from self._steady(sobject, fields, cursor, context)

    def all_ids(self, object_name: str, context: SyncContext) -> Iterator[str]:
        sobject = self._sobject(object_name)
        if object_name == "Pipeline":
            yield self.converter.pipeline().source_id
            return
        if self.fields_for(sobject) is None:
            return
        key = "ApiName" if object_name == "OpportunityStage" else "Id"
        conditions = self._filters(sobject, first_load=False)
        soql = self._soql(sobject, [key], conditions, order=None)
        if not sobject.snapshot and self.config.bulk_threshold > 0:
            total = self.client.count(self._soql(sobject, ["COUNT()"], conditions, order=None),
                                      what=f"count of {object_name}")
            if total > self.config.bulk_threshold:
                # a million ids through REST would be 500 requests; a bulk job streams them in a few pages
                reader = BulkReader(self.client, sobject.name, {}, max_records=self.bulk_page_size, poll_seconds=0.5)
                job_id = reader.start(soql)
                reader.wait(job_id)
                for page in reader.pages(job_id, None):
                    yield from (str(row[key]) for row in page.records)
                return
        for record in self.client.query_records(soql, what=f"ids of {object_name}"):
            yield str(record[key])

    def preflight(self) -> list[Problem]:
        problems: list[Problem] = []
        try:
            _ = self.client.sf
        except (ConnectorError, SyncStopped) as error:
            return [Problem(str(error), f"fix the credentials in [connections.{self.name}]")]
        except Exception as error:  # a wrong URL, a TLS problem: say it, with what to check
            return [Problem(f"{self.name}: cannot reach Salesforce ({type(error).__name__}: {error})",
                            f"check domain, instance_url and ca_bundle in [connections.{self.name}]")]
        for sobject in OBJECTS:
            if sobject.name == "Pipeline":
                continue
            try:
                self.fields_for(sobject)
                self._filters(sobject, first_load=True)
            except ConfigFieldError as error:
                problems.append(Problem(str(error), "correct the field name in the config (describe lists the "
                                                    "object's fields)"))
            except ConnectorError as error:
                problems.append(Problem(str(error), "grant the integration user read access to it"))
        problems += self._budget_problems()
        return problems

    def close(self) -> None:
        self.client.close()

    # -- describe and fields ------------------------------------------------------------------------------

    def _sobject(self, object_name: str) -> SObject:
        sobject = BY_NAME.get(object_name)
        if sobject is None:
            raise ConnectorError(f"{self.name}: no Salesforce object {object_name!r} is synced; use one of "
                                 f"{', '.join(BY_NAME)}")
        return sobject

    def describe(self, object_name: str) -> dict[str, Any] | None:
        if object_name not in self._describes:
            self._describes[object_name] = self.client.describe(object_name)
        return self._describes[object_name]

    def fields_for(self, sobject: SObject) -> list[str] | None:
        """The SOQL field list, checked against describe; None when the org lacks an optional object."""
        if sobject.name in self._fields:
            return self._fields[sobject.name]
        description = self.describe(sobject.name)
        if description is None:
            if sobject.may_be_absent:
                self._fields[sobject.name] = None
                return None
            raise ConnectorError(f"{self.name}: the org has no {sobject.name} object, or the integration user "
                                 "cannot see it")
        types = {field["name"]: field.get("type", "string") for field in description.get("fields", [])}
        missing = [name for name in sobject.required if name not in types]
        if missing:
            raise ConnectorError(f"{self.name}: {sobject.name} has no field(s) {', '.join(missing)} for the "
                                 "integration user; grant field-level read access to them")
        fields = list(sobject.required) + [name for name in sobject.optional if name in types]
        fields += self._configured_fields(sobject, types)
        if sobject.name == "Opportunity" and "RecordTypeId" in types:
            fields += ["RecordType.Name"]
            types["RecordType.Name"] = "string"
        self._types[sobject.name] = types
        self._fields[sobject.name] = list(dict.fromkeys(fields))
        return self._fields[sobject.name]

    def _configured_fields(self, sobject: SObject, types: dict[str, str]) -> list[str]:
        """Fields the config names: refused, naming the key, when absent — unless left at a default that
        this org simply does not have (a standard org has no ``Region__c``)."""
        mapping = self.config.mapping
        found = []
        for key, field_name in sobject.configured(mapping).items():
            if field_name in types:
                found.append(field_name)
                continue
            if key not in mapping.model_fields_set:
                continue
            close = difflib.get_close_matches(field_name, list(types), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigFieldError(f"connections.{self.name}.mapping.{key} = {field_name!r}: {sobject.name} has no "
                                   f"field {field_name!r} (checked against describe){hint}")
        return found

    # -- SOQL ---------------------------------------------------------------------------------------------

    def _filters(self, sobject: SObject, *, first_load: bool) -> list[str]:
        conditions = []
        if sobject.owned and self.config.exclude_owner_ids:
            try:
                owners = soql_list(list(self.config.exclude_owner_ids), soql_id)
            except ValueError as error:
                raise ConfigFieldError(f"connections.{self.name}.exclude_owner_ids: {error}") from None
            conditions.append(f"OwnerId NOT IN {owners}")
        if sobject.name == "Opportunity" and self.config.record_types:
            if "RecordType.Name" not in (self.fields_for(sobject) or []):
                raise ConfigFieldError(f"connections.{self.name}.record_types is set, but Opportunity has no record "
                                       "types in this org; remove the key")
            conditions.append(f"RecordType.DeveloperName IN {soql_list(list(self.config.record_types), soql_string)}")
        if first_load and sobject.lookback:
            since = (self.context.now or datetime.now(UTC)) - timedelta(days=self.config.initial_lookback_days)
            conditions.append(f"{STAMP} >= {soql_datetime(since)}")
        return conditions

    @staticmethod
    def _soql(sobject: SObject, fields: Sequence[str], conditions: Sequence[str], order: str | None) -> str:
        soql = f"SELECT {', '.join(fields)} FROM {sobject.name}"
        if conditions:
            soql += " WHERE " + " AND ".join(f"({condition})" for condition in conditions)
        if order:
            soql += f" ORDER BY {order}"
        return soql

    # -- reference data -----------------------------------------------------------------------------------

    def _snapshot(self, sobject: SObject, fields: list[str], context: SyncContext) -> Iterator[Page]:
        soql = self._soql(sobject, fields, self._filters(sobject, first_load=False), order=None)
        rows = list(self.client.query_records(soql, what=f"query of {sobject.name}"))
        records, _, quarantined = self._convert(sobject, rows, deletes=False)
        yield Page(cursor=_done(context.now or EPOCH, context), records=records, quarantined=quarantined)

    # -- first load ---------------------------------------------------------------------------------------

    def _first_load(self, sobject: SObject, fields: list[str], cursor: Cursor, context: SyncContext) -> Iterator[Page]:
        started = cursor.initial_load_started_at or self._newest_stamp(sobject) or EPOCH
        if cursor.bulk_job_id is not None:
            yield from self._bulk_load(sobject, fields, cursor, started, context)
            return
        if cursor.initial_last_id is None and self.config.bulk_threshold > 0:
            conditions = self._filters(sobject, first_load=True)
            total = self.client.count(self._soql(sobject, ["COUNT()"], conditions, order=None),
                                      what=f"count of {sobject.name}")
            if total > self.config.bulk_threshold:
                log.info("%s: %s has %d records to load, past bulk_threshold %d: Bulk API 2.0", self.name,
                         sobject.name, total, self.config.bulk_threshold)
                yield from self._bulk_load(sobject, fields, replace_cursor(started=started), started, context)
                return
        yield from self._rest_load(sobject, fields, cursor, started, context)

    def _rest_load(self, sobject: SObject, fields: list[str], cursor: Cursor, started: datetime,
                   context: SyncContext) -> Iterator[Page]:
        conditions = self._filters(sobject, first_load=True)
        if cursor.initial_last_id is not None:
            conditions.append(f"Id > {soql_id(cursor.initial_last_id)}")
        soql = self._soql(sobject, fields, conditions, order="Id")
        last_id = cursor.initial_last_id
        for page in self.client.query_pages(soql, include_deleted=False, what=f"first load of {sobject.name}"):
            rows = page.get("records", [])
            records, _, quarantined = self._convert(sobject, rows, deletes=False)
            ids = [row["Id"] for row in rows if row.get("Id")]
            last_id = ids[-1] if ids else last_id
            done = bool(page.get("done", True))
            next_cursor = (_done(started, context) if done
                           else Cursor(initial_load_started_at=started, initial_last_id=last_id))
            expected = page.get("totalSize")
            del page, rows, ids  # not kept alive while the converted page is queued and written
            yield Page(cursor=next_cursor, records=records, quarantined=quarantined, expected_total=expected)

    def _bulk_load(self, sobject: SObject, fields: list[str], cursor: Cursor, started: datetime,
                   context: SyncContext, *, restarted: bool = False) -> Iterator[Page]:
        reader = BulkReader(self.client, sobject.name, self._types.get(sobject.name, {}),
                            max_records=self.bulk_page_size, poll_seconds=0.5)
        job_id = cursor.bulk_job_id
        try:
            if job_id is None:
                soql = self._soql(sobject, fields, self._filters(sobject, first_load=True), order=None)
                job_id = reader.start(soql)
                # Keep the job before waiting: a kill now resumes this job instead of starting another.
                yield Page(cursor=Cursor(initial_load_started_at=started, bulk_job_id=job_id))
            reader.wait(job_id)
            for results in reader.pages(job_id, cursor.bulk_locator):
                records, _, quarantined = self._convert(sobject, results.records, deletes=False)
                locator = results.next_locator
                # The raw rows (several times the records' size) must not stay alive in this suspended
                # generator while the page waits in the engine's queue and is written.
                del results
                next_cursor = (_done(started, context) if locator is None else
                               Cursor(initial_load_started_at=started, bulk_job_id=job_id, bulk_locator=locator))
                yield Page(cursor=next_cursor, records=records, quarantined=quarantined)
        except BulkJobGone:
            if restarted:
                raise
            context.warn(f"{self.name}: Bulk API job {job_id} for {sobject.name} is gone (results expire); "
                         "starting the first load again")
            yield from self._bulk_load(sobject, fields, replace_cursor(started=started), started, context,
                                       restarted=True)

    # -- steady state -------------------------------------------------------------------------------------

    def _steady(self, sobject: SObject, fields: list[str], cursor: Cursor, context: SyncContext) -> Iterator[Page]:
        ceiling = self._newest_stamp(sobject)
        conditions = self._filters(sobject, first_load=False)
        if cursor.stamp is not None and cursor.last_id:
            stamp = soql_datetime(cursor.stamp)
            conditions.append(f"({STAMP} = {stamp} AND Id > {soql_id(cursor.last_id)}) OR {STAMP} > {stamp}")
        elif cursor.stamp is not None:
            conditions.append(f"{STAMP} >= {soql_datetime(cursor.stamp)}")
        soql = self._soql(sobject, fields, conditions, order=f"{STAMP}, Id")
        position = cursor
        for page in self.client.query_pages(soql, include_deleted=True, what=f"changes of {sobject.name}"):
            rows = page.get("records", [])
            records, deleted, quarantined = self._convert(sobject, rows, deletes=True)
            position = _advance(position, rows, ceiling)
            expected = page.get("totalSize")
            del page, rows  # not kept alive while the converted page is queued and written
            yield Page(cursor=position, records=records, deleted_ids=deleted, quarantined=quarantined,
                       expected_total=expected)

    def _newest_stamp(self, sobject: SObject) -> datetime | None:
        """The object's newest SystemModstamp now (deleted rows included): the clock of the server's own
        stamps, which a cursor may safely reach."""
        soql = f"SELECT {STAMP} FROM {sobject.name} ORDER BY {STAMP} DESC LIMIT 1"
        page = self.client.call(f"newest stamp of {sobject.name}",
                                lambda sf: sf.query(soql, include_deleted=True))
        rows = page.get("records", [])
        return instant(rows[0].get(STAMP), STAMP) if rows else None

    # -- records ------------------------------------------------------------------------------------------

    def _convert(self, sobject: SObject, rows: Sequence[dict[str, Any]], *, deletes: bool
                 ) -> tuple[list[CrmRecord], list[str], list[QuarantinedItem]]:
        records: list[CrmRecord] = []
        deleted: list[str] = []
        quarantined: list[QuarantinedItem] = []
        for raw in rows:
            if deletes and raw.get("IsDeleted") in (True, "true") and raw.get("Id"):
                deleted.append(str(raw["Id"]))
                continue
            try:
                records.append(self.converter.convert(sobject.name, raw))
            except (BadValue, ValueError, TypeError) as error:
                quarantined.append(QuarantinedItem(str(raw.get("Id") or ""), f"{sobject.name}: {error}",
                                                   _payload(raw)))
        return records, deleted, quarantined

    def _budget_problems(self) -> list[Problem]:
        try:
            limits = self.client.call("limits", lambda sf: sf.limits())
        except Exception as error:  # preflight reports, it does not stop
            return [Problem(f"{self.name}: cannot read the org's limits ({type(error).__name__})",
                            "grant the integration user 'View Setup and Configuration'")]
        daily = limits.get("DailyApiRequests", {})
        maximum, remaining = daily.get("Max"), daily.get("Remaining")
        if maximum and remaining is not None and remaining < maximum * (1 - self.config.api_budget_share):
            return [Problem(f"{self.name}: only {remaining} of {maximum} daily API requests remain, less than the "
                            f"share the sync may use (api_budget_share = {self.config.api_budget_share:g})",
                            "wait for the rolling 24 hours to free requests, or raise api_budget_share")]
        return []


def replace_cursor(*, started: datetime) -> Cursor:
    return Cursor(initial_load_started_at=started)


def _done(started: datetime, context: SyncContext) -> Cursor:
    """The cursor that completes a first load: the watermark is its start minus the overlap."""
    return Cursor(initial_load_done=True, initial_load_started_at=started, stamp=started - context.overlap)


def _advance(cursor: Cursor, rows: Sequence[dict[str, Any]], ceiling: datetime | None) -> Cursor:
    """The position after ``rows``: the last row whose stamp is within ``ceiling`` (rows changed since the
    run began carry later stamps and are read again next run)."""
    position = cursor
    for row in rows:
        stamp = instant(row.get(STAMP), STAMP) if row.get(STAMP) else None
        if stamp is None or not row.get("Id") or (ceiling is not None and stamp > ceiling):
            continue
        position = Cursor(stamp=stamp, last_id=str(row["Id"]), initial_load_done=True,
                          initial_load_started_at=cursor.initial_load_started_at)
    return position


def _payload(raw: dict[str, Any]) -> dict[str, Any]:
    """The record as the CRM sent it, minus REST's ``attributes`` noise."""
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "attributes":
            continue
        cleaned[key] = _payload(value) if isinstance(value, dict) else value
    return cleaned


def _setting(config: SalesforceConnection, key: str, env: str, default: int) -> int:
    value = getattr(config, key, None) or os.environ.get(env)
    return int(value) if value else default


def create_connector(name: str, config: SalesforceConnection, context: SyncContext) -> SalesforceConnector:
    if not isinstance(config, SalesforceConnection):
        raise ConnectorError(f"connections.{name}: kind = 'salesforce' needs a Salesforce connection section")
    return SalesforceConnector(name, config, context)
