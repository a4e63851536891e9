"""The HubSpot connector's retry policy: how long to wait before trying a failed call again.

hubspot-api-client would retry on its own (urllib3's default ``Retry(3)`` silently repeats GETs answered
429/503 with a Retry-After, but never a search POST; api-notes §2.5).  The connector switches that off
(:data:`NO_CLIENT_RETRIES`) and applies this policy to every call instead, so a list GET and a search POST
behave the same and every wait is logged.

- 429 ``TEN_SECONDLY_ROLLING`` / ``SECONDLY`` (the search endpoints' own limit): wait ``Retry-After`` when
  HubSpot sends it, else back off.
- 429 ``DAILY``: not retried; the object stops with its cursor kept (:class:`DailyLimitReached`).
- 5xx, dropped or cut-off connections, unreadable bodies: exponential backoff with jitter.
- any other 4xx: not retried (the request itself is wrong).

``agent/sync/retry.py`` (the sync engine's own policy) did not exist when this was written; this module
is the connector's policy until the engine offers one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from urllib3.util.retry import Retry

# Given to HubSpot(retry=...): no retries of any kind inside urllib3, and the 429/5xx answer comes back
# to the connector as the client's ApiException (not urllib3's MaxRetryError).
NO_CLIENT_RETRIES = Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0, raise_on_status=False,
                          respect_retry_after_header=False)


@dataclass(frozen=True)
class Wait:
    """One wait the policy decided on: what failed, and for how long the connector sleeps."""

    what: str
    attempt: int
    reason: str
    seconds: float


@dataclass
class RetryPolicy:
    """Backoff ``base_delay * 2**(attempt-1)`` capped at ``max_delay``, with "equal jitter" (a random
    point in its upper half) so that many clients do not retry in step; ``Retry-After`` wins when sent."""

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A Retry-After longer than this is not waited out in-process (the object stops instead).
    max_retry_after: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    random_fraction: Callable[[], float] = random.random
    waits: list[Wait] = field(default_factory=list)

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling / 2 + self.random_fraction() * ceiling / 2

    def delay(self, attempt: int, retry_after: float | None) -> float:
        return retry_after if retry_after is not None else self.backoff(attempt)

    def wait(self, what: str, attempt: int, reason: str, seconds: float) -> Wait:
        waited = Wait(what, attempt, reason, seconds)
        self.waits.append(waited)
        if seconds > 0:
            self.sleep(seconds)
        return waited
