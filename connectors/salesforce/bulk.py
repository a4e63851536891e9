"""Bulk API 2.0 query jobs, read page by page so a big first load streams into the cache.

simple-salesforce's ``sf.bulk2.X.query()`` hides the job id and the locator, and re-authenticates nothing;
a load of a million records must survive both a kill (resume from the job and locator kept in the cursor)
and a session that expires during hours of paging (log in again, repeat the page).  So the connector drives
the same client class (``_Bulk2Client``: create job, poll, results by locator) one step at a time, through
:meth:`SalesforceClient.call`, which retries, re-logs in and checks the budget.

Each results page is CSV with a header row: values are strings, empty means null, relationship columns are
``Parent.Field``.  They are typed here from describe, so the converters see what REST would have sent.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.salesforce.client import ConnectorError, SalesforceClient

log = logging.getLogger(__name__)

FINAL_STATES = ("JobComplete", "Failed", "Aborted")


class BulkJobGone(Exception):
    """The job of a resumed load no longer exists (results are kept for days, not forever)."""


@dataclass(frozen=True)
class ResultsPage:
    records: list[dict[str, Any]]
    next_locator: str | None  # None: this was the last page


class BulkReader:
    """One object's Bulk API 2.0 query: start a job, wait for it, read its results by locator."""

    def __init__(self, client: SalesforceClient, object_name: str, field_types: Mapping[str, str], *,
                 max_records: int = 50_000, poll_seconds: float = 1.0, poll_limit: int = 100_000) -> None:
        self.client = client
        self.object_name = object_name
        self.field_types = field_types
        self.max_records = max_records
        self.poll_seconds = poll_seconds
        self.poll_limit = poll_limit

    def _bulk(self, sf: Any) -> Any:
        # sf.bulk2 builds its headers from the current session id, so after a re-login it uses the new one.
        return getattr(sf.bulk2, self.object_name)._client

    def start(self, soql: str) -> str:
        from simple_salesforce.bulk2 import Operation

        job = self.client.call(f"bulk job for {self.object_name}",
                               lambda sf: self._bulk(sf).create_job(Operation.query, soql))
        return str(job["id"])

    def wait(self, job_id: str) -> None:
        """Poll the job until it completes; a failed or aborted job is an error naming it."""
        for attempt in range(self.poll_limit):
            info = self._job(job_id)
            state = info.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                raise ConnectorError(f"{self.client.name}: Bulk API job {job_id} for {self.object_name} ended "
                                     f"{state}: {info.get('errorMessage') or 'no reason given'}")
            self.client.policy.sleep(min(self.poll_seconds * (1 + attempt / 4), 10.0) * self.client.policy.scale)
        raise ConnectorError(f"{self.client.name}: Bulk API job {job_id} for {self.object_name} did not finish")

    def _job(self, job_id: str) -> dict[str, Any]:
        from simple_salesforce.exceptions import SalesforceResourceNotFound

        try:
            return self.client.call(f"bulk job {job_id}", lambda sf: self._bulk(sf).get_job(job_id, True))
        except SalesforceResourceNotFound:
            raise BulkJobGone(job_id) from None

    def pages(self, job_id: str, locator: str | None) -> Iterator[ResultsPage]:
        """Results from ``locator`` (None: the first page) to the end."""
        from simple_salesforce.exceptions import SalesforceResourceNotFound

        current = locator or ""
        while True:
            try:
                result = self.client.call(
                    f"bulk results of {self.object_name}",
                    lambda sf, at=current: self._bulk(sf).get_query_results(job_id, at, self.max_records))
            except SalesforceResourceNotFound:
                raise BulkJobGone(job_id) from None
            following = result.get("locator") or None
            # popped, so that this suspended generator does not keep the page's CSV text alive
            yield ResultsPage(self.typed_rows(result.pop("records")), following)
            if following is None:
                return
            current = following

    def typed_rows(self, csv_text: str) -> list[dict[str, Any]]:
        """The rows as the CSV has them: the converters read strings as REST values (``""`` is null,
        ``"true"`` a boolean, ``"12.5"`` a number), so typing each value here first would only cost time."""
        return list(csv.DictReader(io.StringIO(csv_text)))
