"""Every HubSpot call the connector makes, through hubspot-api-client, under the sync's retry policy.

The generated client is used as shipped (``hubspot.HubSpot`` with ``host=`` the configured base URL) with
two choices made on purpose:

- ``retry=hubspot_client_retry()``: urllib3's own silent retries (which repeat a GET answered 429 with a
  Retry-After but never a search POST, api-notes §2.5) are off, and ``agent.sync.retry`` decides for GET
  and search alike: 429 ``TEN_SECONDLY_ROLLING`` / ``SECONDLY`` and 5xx are retried with backoff and
  jitter, at least ``Retry-After``; 429 ``DAILY`` stops the object (:class:`DailyLimitReached`);
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hubspot import HubSpot

from agent.config import HubSpotConnection
from agent.sync.retry import (
    BudgetExhausted,
    Decision,
    RetryPolicy,
    call_with_retry,
    classify_hubspot_error,
    hubspot_client_retry,
    policy_for,
)
from connectors.hubspot.errors import ApiBudgetSpent, DailyLimitReached, HubSpotRequestRefused, HubSpotUnavailable

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = (10.0, 120.0)  # (connect, read) seconds
SEARCH_PAGE_MAX = 200  # search answers at most 200 results a page (api-notes §2.5)
LIST_PAGE_MAX = 100  # list endpoints cap `limit` at 100
HISTORY_PAGE_MAX = 50  # with propertiesWithHistory, list and batch read return at most 50 records
BATCH_READ_MAX = 100
ASSOCIATIONS_BATCH_MAX = 1000
SEARCH_INTERVAL = 0.25  # seconds between two searches: the search endpoints allow 4-5 per second


class UnreadableAnswer(ValueError):
    """A 2xx answer whose body is not the JSON object HubSpot sends (cut off, garbled)."""


@dataclass(frozen=True)
class Wait:
    """One retry the policy decided on (kept for the sync's report and for tests)."""

    what: str
    attempt: int
    reason: str
    seconds: float


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
                 search_interval: float = SEARCH_INTERVAL, budget_share: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.connection = connection
        self.policy = policy or policy_for("hubspot")
        self.waits: list[Wait] = []
        self.search_interval = search_interval
        self.budget_share = config.api_budget_share if budget_share is None else budget_share
        self.budget = DailyBudget()
        self.requests = 0
        self._clock = clock
        self._next_search_at = 0.0
        tls = {"ssl_ca_cert": str(config.ca_bundle)} if config.ca_bundle else {}
        self._client = HubSpot(access_token=config.access_token.get_secret_value(),
                               host=config.base_url.rstrip("/"), retry=hubspot_client_retry(), **tls)

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
        """Send one request under the retry policy; a final failure becomes an error naming the call."""
        where = f"HubSpot connection {self.connection!r}, {what}"

        def attempt() -> dict[str, Any]:
            self._check_budget(where)
            if search:
                self._pace_search()
            return self._read(send())

        def note(number: int, seconds: float, error: BaseException) -> None:
            self.waits.append(Wait(what, number, _describe(error), seconds))

        try:
            return call_with_retry(attempt, policy=self.policy, classify=classify, what=where, on_retry=note)
        except BudgetExhausted as stop:
            if isinstance(stop, (ApiBudgetSpent, DailyLimitReached)):
                raise
            raise DailyLimitReached(f"{where}: HubSpot's DAILY API limit is reached (429, policy DAILY); the "
                                    "object stops here with its cursor kept and carries on after the limit "
                                    "resets at midnight (portal time)") from stop
        except Exception as error:  # noqa: BLE001 - turned into an error that names the call
            raise _final_error(where, error, self.policy.attempts) from error

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


def classify(error: BaseException) -> Decision:
    """The sync's HubSpot classification, plus answers that arrived but cannot be read (retried too)."""
    if isinstance(error, (UnreadableAnswer, json.JSONDecodeError, UnicodeDecodeError)):
        return Decision(True, reason=f"unreadable answer ({type(error).__name__})")
    return classify_hubspot_error(error)


def _final_error(where: str, error: BaseException, attempts: int) -> Exception:
    status = getattr(error, "status", None)
    body = _json_or_empty(getattr(error, "body", None))
    message = str(body.get("message") or getattr(error, "reason", "") or type(error).__name__)[:300]
    if isinstance(status, int) and 400 <= status < 500 and status != 429:
        category = body.get("category")
        detail = f" {category}" if category else ""
        return HubSpotRequestRefused(f"{where}: HubSpot answered {status}{detail}: {message}{_hint(status)}",
                                     status)
    return HubSpotUnavailable(f"{where}: still failing after {attempts} attempts (last: {_describe(error)}); "
                              "the cursor is kept, sync again later")


def _describe(error: BaseException) -> str:
    status = getattr(error, "status", None)
    if isinstance(status, int) and status:
        body = _json_or_empty(getattr(error, "body", None))
        policy = body.get("policyName")
        return f"{status} {policy}" if policy else f"{status} {str(body.get('message') or '')[:120]}".strip()
    return type(error).__name__


def _hint(status: int) -> str:
    hints = {401: "; the access token was refused: give access_token a private app token (or env:VARIABLE)",
             403: "; the private app lacks a scope: add the read scope of this object and reinstall the app"}
    return hints.get(status, "")


def _json_or_empty(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        body = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
