"""Retries for CRM calls: exponential backoff with full jitter, ``Retry-After`` honoured, one policy per service.

Neither client library retries the way a sync needs: simple-salesforce retries nothing but a re-login, and
hubspot-api-client leaves urllib3's pool default ``Retry(3)`` in place, which silently retries a GET that got
a 429 with ``Retry-After`` but never a search (a POST) — so the same throttling behaves differently per
endpoint (api-notes §2.5).  Connectors therefore switch the client's own retries off
(:func:`hubspot_client_retry`) and wrap each call in :func:`call_with_retry` with their service's
:class:`RetryPolicy`; what is retried, waited for or given up on is decided in one place.

A call that must not be retried but must stop the object cleanly (a spent API budget) raises
:class:`BudgetExhausted`; the engine keeps the cursor and reports the message.

``KPI_AGENT_RETRY_SCALE`` multiplies every wait (tests set it tiny so a 503 storm takes milliseconds; the
sequence of attempts, which the sandbox's request log shows, is unchanged).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
SCALE_ENV = "KPI_AGENT_RETRY_SCALE"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class SyncStopped(Exception):
    """An object's sync stops cleanly: its cursor stays where the last committed page put it."""


class BudgetExhausted(SyncStopped):
    """The CRM's API budget (or the configured share of it) is spent; the next run resumes."""


class CredentialsExpired(SyncStopped):
    """The session cannot be renewed with what the config holds (session-id auth)."""


@dataclass(frozen=True)
class Decision:
    """What to do about one failure: retry after at least ``wait`` seconds (from Retry-After), or not."""

    retry: bool
    wait: float | None = None
    reason: str = ""


Classifier = Callable[[BaseException], Decision]


@dataclass(frozen=True)
class RetryPolicy:
    """How one service is retried: attempts, exponential backoff bounds, and the cap on Retry-After."""

    service: str
    attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0
    scale: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """"Equal jitter": uniform in [c/2, c] with c = min(max, base * 2**attempt), so waits still grow
        attempt by attempt (visible in the CRM's request log) while clients throttled together spread out."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return self.rng.uniform(ceiling / 2, ceiling)

    def delay(self, attempt: int, decision: Decision) -> float:
        wait = self.backoff(attempt)
        if decision.wait is not None:
            wait = max(wait, min(decision.wait, self.max_retry_after))
        return wait * self.scale

    def scaled(self, scale: float) -> RetryPolicy:
        return replace(self, scale=scale)


def policy_for(service: str, **overrides: Any) -> RetryPolicy:
    """The default policy of ``service`` ("salesforce", "hubspot"), with ``KPI_AGENT_RETRY_SCALE`` applied."""
    defaults: Mapping[str, Mapping[str, Any]] = {
        "salesforce": {"attempts": 8, "base_delay": 1.0, "max_delay": 60.0},
        "hubspot": {"attempts": 10, "base_delay": 1.0, "max_delay": 30.0},
    }
    settings = {**defaults.get(service, {}), **overrides}
    scale = float(os.environ.get(SCALE_ENV, "1") or 1)
    return RetryPolicy(service=service, scale=scale, **settings)


def call_with_retry(call: Callable[[], T], *, policy: RetryPolicy, classify: Classifier, what: str,
                    on_retry: Callable[[int, float, BaseException], None] | None = None) -> T:
    """Run ``call``; on a failure ``classify`` calls transient, wait and try again, up to the policy's attempts.

    ``what`` names the call in log lines and in the final error ("Salesforce query of Opportunity").
    """
    attempt = 0
    while True:
        try:
            return call()
        except SyncStopped:
            raise
        except Exception as error:  # classified below: anything not transient is re-raised untouched
            decision = classify(error)
            attempt += 1
            if not decision.retry or attempt >= policy.attempts:
                if decision.retry:
                    log.warning("%s: giving up after %d attempts (%s)", what, attempt, decision.reason)
                raise
            wait = policy.delay(attempt - 1, decision)
            log.info("%s: %s; retry %d/%d in %.2fs", what, decision.reason, attempt, policy.attempts - 1, wait)
            if on_retry is not None:
                on_retry(attempt, wait, error)
            policy.sleep(wait)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def classify_transport_error(error: BaseException) -> Decision | None:
    """Connection resets, short reads and timeouts of requests and urllib3: always worth another try."""
    import requests
    import urllib3.exceptions

    if isinstance(error, (requests.exceptions.SSLError, urllib3.exceptions.SSLError)):
        return Decision(False, reason="TLS certificate not trusted")  # a config problem, not a transient one
    transient: tuple[type[BaseException], ...] = (
        requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError,
    )
    if isinstance(error, transient):
        return Decision(True, reason=f"connection problem ({type(error).__name__})")
    return None


def classify_hubspot_error(error: BaseException) -> Decision:
    """hubspot-api-client failures: 429 (Retry-After honoured) and 5xx and status 0 (TLS, connection) retry.

    Each generated HubSpot package has its own ``ApiException`` class, so the check is on ``.status``.
    A 429 of the DAILY policy is not transient: the day's budget is spent.
    """
    transport = classify_transport_error(error)
    if transport is not None:
        return transport
    status = getattr(error, "status", None)
    if not isinstance(status, int):
        return Decision(False)
    headers = getattr(error, "headers", None) or {}
    if status == 429:
        body = str(getattr(error, "body", "") or "")
        if '"DAILY"' in body or "'DAILY'" in body:
            raise BudgetExhausted("HubSpot's daily API limit is spent (429, policy DAILY); the sync resumes "
                                  "from its cursor tomorrow or after the limit is raised") from error
        return Decision(True, retry_after_seconds(headers.get("Retry-After")), "HubSpot rate limit (429)")
    if status == 0 or status >= 500:
        answered = f"HubSpot answered {status or 'nothing'}"
        return Decision(True, retry_after_seconds(headers.get("Retry-After")), answered)
    return Decision(False)


def hubspot_client_retry() -> Any:
    """A urllib3 ``Retry`` for ``HubSpot(retry=...)`` that retries nothing, so the connector's policy alone
    decides (urllib3's default would silently retry only GETs that carry ``Retry-After``)."""
    from urllib3.util.retry import Retry

    return Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, status_forcelist=(),
                 respect_retry_after_header=False, raise_on_status=False, raise_on_redirect=False)
