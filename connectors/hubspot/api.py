"""Every HubSpot call the connector makes, through hubspot-api-client, under one retry policy.

The generated client is used as shipped (``hubspot.HubSpot`` with ``host=`` the configured base URL) with
two choices made on purpose:

- ``retry=NO_CLIENT_RETRIES``: urllib3's own silent retries are off, and :class:`RetryPolicy` decides for
  GET and search alike (see ``retry.py``);
- ``_preload_content=False``: the client hands back the raw response and the connector reads the JSON
  itself.  The client's model layer would raise on the whole page for one unparseable timestamp
  (api-notes §2.3), where the connector must quarantine that one record and land the rest; it is also
  several times faster on large pages.

The token is read from the config's secret only to build the client; it is never formatted into a
message or a log line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import urllib3
from hubspot import HubSpot

from agent.config import HubSpotConnection
from connectors.hubspot.errors import (
    ApiBudgetSpent,
    DailyLimitReached,
    HubSpotRequestRefused,
    HubSpotUnavailable,
)
from connectors.hubspot.retry import NO_CLIENT_RETRIES, RetryPolicy

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds
SEARCH_PAGE_MAX = 200  # search answers at most 200 results a page (api-notes §2.5)
LIST_PAGE_MAX = 100  # list endpoints cap `limit` at 100
HISTORY_PAGE_MAX = 50  # with propertiesWithHistory, list and batch read return at most 50 records
BATCH_READ_MAX = 100
ASSOCIATIONS_BATCH_MAX = 1000
RETRYABLE_POLICIES = ("TEN_SECONDLY_ROLLING", "SECONDLY")


class UnreadableAnswer(ValueError):
    """A 2xx answer whose body is not the JSON object HubSpot sends (cut off, garbled)."""


@dataclass(frozen=True)
class Failure:
    """A failed call, classified: what happened, whether to retry, how long HubSpot asks us to wait."""

    description: str
    status: int | None = None
    retryable: bool = True
    retry_after: float | None = None
    policy: str | None = None
    message: str | None = None


@dataclass
class DailyBudget:
    """The portal's daily budget as the last rate-limit headers told it."""

    limit: int | None = None
    remaining: int | None = None

    def used_share(self) -> float | None:
        if not self.limit or self.remaining is None:
            return None
        return (self.limit - self.remaining) / self.limit


class HubSpotApi:
    """One connection's HubSpot client: typed calls returning parsed JSON, each under the retry policy."""

    def __init__(self, connection: str, config: HubSpotConnection, *, policy: RetryPolicy | None = None,
                 search_interval: float = 0.25, budget_share: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.connection = connection
        self.policy = policy or RetryPolicy()
        self.search_interval = search_interval
        self.budget_share = config.api_budget_share if budget_share is None else budget_share
        self.budget = DailyBudget()
        self.requests = 0
        self._clock = clock
        self._next_search_at = 0.0
        self._client = HubSpot(access_token=config.access_token.get_secret_value(),
                               host=config.base_url.rstrip("/"), retry=NO_CLIENT_RETRIES)

    # Each API object builds its own urllib3 pool: build each once, so connections are kept alive.
    @cached_property
    def _objects(self) -> Any:
        return self._client.crm.objects.basic_api

    @cached_property
    def _search(self) -> Any:
        return self._client.crm.objects.search_api

    @cached_property
    def _batch(self) -> Any:
        return self._client.crm.objects.batch_api

    @cached_property
    def _associations(self) -> Any:
        return self._client.crm.associations.v4.batch_api

    @cached_property
    def _owners(self) -> Any:
        return self._client.crm.owners.owners_api

    @cached_property
    def _pipelines(self) -> Any:
        return self._client.crm.pipelines.pipelines_api

    @cached_property
    def _properties(self) -> Any:
        return self._client.crm.properties.core_api

    # -- calls ---------------------------------------------------------------------------------------

    def search(self, object_type: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /crm/v3/objects/{type}/search``."""
        return self._call(f"{object_type} search", lambda: self._search.do_search(
            object_type, dict(body), **self._raw()), search=True)

    def list_page(self, object_type: str, *, after: str | None = None, properties: Sequence[str] = (),
                  history: Sequence[str] = (), associations: Sequence[str] = (), archived: bool = False,
                  limit: int = LIST_PAGE_MAX) -> dict[str, Any]:
        """``GET /crm/v3/objects/{type}`` (one page; ``paging.next.after`` leads to the next)."""
        options: dict[str, Any] = {"limit": limit, "archived": archived}
        if after:
            options["after"] = after
        if properties:
            options["properties"] = list(properties)
        if history:
            options["properties_with_history"] = list(history)
        if associations:
            options["associations"] = list(associations)
        return self._call(f"{object_type} list", lambda: self._objects.get_page(
            object_type, **options, **self._raw()))

    def batch_read(self, object_type: str, ids: Sequence[str], *, properties: Sequence[str] = (),
                   history: Sequence[str] = ()) -> list[dict[str, Any]]:
        """``POST /crm/v3/objects/{type}/batch/read`` for up to 100 ids (50 with history)."""
        body: dict[str, Any] = {"inputs": [{"id": object_id} for object_id in ids],
                                "properties": list(properties)}
        if history:
            body["propertiesWithHistory"] = list(history)
        answer = self._call(f"{object_type} batch read", lambda: self._batch.read(
            object_type, body, archived=False, **self._raw()))
        return list(answer.get("results") or [])

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """v4 batch read of associations: ``{from id: [{"toObjectId", "associationTypes"}, ...]}``."""
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(ids), ASSOCIATIONS_BATCH_MAX):
            chunk = ids[start:start + ASSOCIATIONS_BATCH_MAX]
            body = {"inputs": [{"id": object_id} for object_id in chunk]}
            answer = self._call(f"{from_type}→{to_type} associations", lambda body=body: self._associations.get_page(
                from_type, to_type, body, **self._raw()))
            for result in answer.get("results") or []:
                source = str((result.get("from") or {}).get("id", ""))
                found.setdefault(source, []).extend(result.get("to") or [])
        return found

    def owners_page(self, *, after: str | None, archived: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"limit": 500, "archived": archived}
        if after:
            options["after"] = after
        return self._call("owners", lambda: self._owners.get_page(**options, **self._raw()))

    def pipelines(self, object_type: str) -> list[dict[str, Any]]:
        answer = self._call(f"{object_type} pipelines", lambda: self._pipelines.get_all(object_type, **self._raw()))
        return list(answer.get("results") or [])

    def properties(self, object_type: str) -> list[dict[str, Any]]:
        answer = self._call(f"{object_type} properties", lambda: self._properties.get_all(
            object_type, archived=False, **self._raw()))
        return list(answer.get("results") or [])

    def close(self) -> None:
        for name in ("_objects", "_search", "_batch", "_associations", "_owners", "_pipelines", "_properties"):
            api = self.__dict__.pop(name, None)
            if api is not None:
                api.api_client.rest_client.pool_manager.clear()

    # -- the policy ----------------------------------------------------------------------------------

    @staticmethod
    def _raw() -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}

    def _call(self, what: str, send: Callable[[], Any], *, search: bool = False) -> dict[str, Any]:
        """Send one request until it succeeds, retrying what the policy says is worth retrying."""
        attempt = 0
        while True:
            attempt += 1
            self._check_budget(what)
            if search:
                self._pace_search()
            try:
                return self._read(send())
            except Exception as error:  # noqa: BLE001 - every failure is classified just below
                failure = classify(error)
            self._give_up_unless_retryable(what, attempt, failure)
            seconds = self.policy.delay(attempt, failure.retry_after)
            if seconds > self.policy.max_retry_after:
                raise HubSpotUnavailable(
                    f"HubSpot connection {self.connection!r}, {what}: {failure.description} asks to wait "
                    f"{seconds:.0f} s, longer than the connector waits in-process; the cursor is kept, sync again "
                    "later") from None
            log.warning("HubSpot connection %r, %s: %s; waiting %.2f s before attempt %d", self.connection,
                        what, failure.description, seconds, attempt + 1)
            self.policy.wait(what, attempt, failure.description, seconds)

    def _give_up_unless_retryable(self, what: str, attempt: int, failure: Failure) -> None:
        where = f"HubSpot connection {self.connection!r}, {what}"
        if failure.policy == "DAILY":
            raise DailyLimitReached(
                f"{where}: HubSpot's DAILY API limit is reached ({failure.message or '429'}); the object stops "
                "here with its cursor kept and carries on after the budget resets at midnight (portal time)")
        if not failure.retryable:
            raise HubSpotRequestRefused(f"{where}: {failure.description}{_hint(failure.status)}",
                                        failure.status or 0)
        if attempt >= self.policy.max_attempts:
            raise HubSpotUnavailable(
                f"{where}: still failing after {attempt} attempts (last: {failure.description}); the cursor is "
                "kept, sync again later")

    def _read(self, response: Any) -> dict[str, Any]:
        try:
            self.requests += 1
            raw = response.data
            self._note_limits(response.headers)
            body = json.loads(raw) if raw else {}
        finally:
            response.release_conn()
        if not isinstance(body, dict):
            raise UnreadableAnswer("HubSpot answered JSON that is not an object")
        return body

    def _note_limits(self, headers: Mapping[str, str]) -> None:
        daily = _int_header(headers, "X-HubSpot-RateLimit-Daily")
        remaining = _int_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily is not None and remaining is not None:
            self.budget = DailyBudget(daily, remaining)

    def _check_budget(self, what: str) -> None:
        used = self.budget.used_share()
        if used is not None and used >= self.budget_share:
            raise ApiBudgetSpent(
                f"HubSpot connection {self.connection!r}, {what}: {used:.0%} of the portal's daily API budget "
                f"({self.budget.limit} calls) is used, and api_budget_share is {self.budget_share:.0%}; the object "
                "stops here with its cursor kept (raise api_budget_share to let the agent use more)")

    def _pace_search(self) -> None:
        # The search endpoints have their own per-second limit; spacing the calls avoids most 429s.
        now = self._clock()
        if now < self._next_search_at:
            time.sleep(self._next_search_at - now)
            now = self._clock()
        self._next_search_at = now + self.search_interval


def classify(error: BaseException) -> Failure:
    """What a failed call means for the retry policy."""
    status = getattr(error, "status", None)
    if isinstance(status, int) and status > 0 and hasattr(error, "body"):
        return _classify_status(status, getattr(error, "headers", None) or {}, getattr(error, "body", None))
    if isinstance(error, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)):
        return Failure(f"connection failed ({type(error).__name__})")
    if isinstance(error, (UnreadableAnswer, json.JSONDecodeError, UnicodeDecodeError)):
        return Failure(f"unreadable answer ({type(error).__name__})")
    if isinstance(status, int):  # ApiException(status=0): TLS and other transport problems
        return Failure(f"transport error ({getattr(error, 'reason', error)})")
    raise error


def _classify_status(status: int, headers: Mapping[str, str], raw_body: Any) -> Failure:
    body = _json_or_empty(raw_body)
    message = str(body.get("message") or "")[:300] or None
    retry_after = _float_header(headers, "Retry-After")
    if status == 429:
        policy = str(body.get("policyName") or "TEN_SECONDLY_ROLLING")
        return Failure(f"429 {policy}", status, retry_after=retry_after, policy=policy, message=message)
    if status >= 500:
        return Failure(f"{status} {message or 'server error'}", status, retry_after=retry_after, message=message)
    category = body.get("category") or body.get("subCategory")
    detail = f" {category}" if category else ""
    return Failure(f"{status}{detail}: {message or 'refused'}", status, retryable=False, message=message)


def _hint(status: int | None) -> str:
    hints = {401: " — the access token was refused: check access_token (a private app token, or env:VARIABLE)",
             403: " — the private app lacks a scope: add the crm.objects.*.read / crm.schemas.*.read scopes "
                  "it names"}
    return hints.get(status or 0, "")


def _json_or_empty(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _header(headers: Mapping[str, str] | Iterable[Any], name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None:
        value = getter(name.lower())
    return None if value is None else str(value)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = _header(headers, name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float_header(headers: Mapping[str, str], name: str) -> float | None:
    value = _header(headers, name)
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
