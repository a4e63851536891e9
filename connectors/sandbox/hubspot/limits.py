"""HubSpot's request budgets, page caps and search caps, and the rolling counters that enforce them.

Real values by default (sources in the comments; `/work/shared/api-notes.md` §2.5 summarises them).
`limits_scale` multiplies the request budgets (10 = ten times the real ones, 0 = no budget at all);
page sizes and search caps are never scaled, as connectors must live with the real ones.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class SearchCaps:
    # Filter caps: 5 groups, 6 filters per group, 18 in all (HubSpot's CRM search guide, "Limitations").
    # The 2024-08-26 changelog announced 5 / 10 / 25; keep the stricter documented figures so a connector
    # that passes here passes there.
    filter_groups_max: int = 5
    filters_per_group_max: int = 6
    filters_total_max: int = 18
    page_max: int = 200  # "maximum number of supported objects per page is 200" (search guide)
    total_max: int = 10_000  # paging beyond 10,000 results answers 400 (search guide)


@dataclass(frozen=True)
class HubSpotLimits:
    """Budgets of one private app token (Professional tier unless told otherwise)."""

    # Private apps, Professional / Enterprise: 190 requests per rolling 10 s; Free / Starter: 100
    # (developers.hubspot.com/docs/guides/apps/api-usage/usage-details, "increasing our API limits" 2024).
    burst_max: int = 190
    burst_interval_ms: int = 10_000
    # Daily budget: 625,000 (Professional); Free / Starter 250,000; Enterprise 1,000,000.
    daily_max: int = 625_000
    # Search endpoints: 5 requests per second per account, outside the ten-secondly budget
    # (search guide; the OpenAPI files mark search "x-hubspot-rate-limit-exemptions: ten-secondly").
    search_per_second: int = 5
    list_page_max: int = 100  # list endpoints: the client's own helpers page with 100 (utils/objects.py)
    history_page_max: int = 50  # with propertiesWithHistory (hubspot/utils/objects.py PROPERTY_HISTORY_MAX_SIZE)
    owners_page_max: int = 500
    associations_page_max: int = 500  # v4 associations: "limit up to 500"
    batch_read_max: int = 1000  # v4 associations batch read inputs
    search: SearchCaps = field(default_factory=SearchCaps)
    # Whether a 429 of the sandbox's own limiter carries Retry-After (the seconds until a slot frees), and a
    # cap on that wait so tests stay fast. urllib3 inside hubspot-api-client silently retries GETs whose
    # 429 carries Retry-After (api-notes §2.5).
    send_retry_after: bool = True
    retry_after_cap: float | None = None

    def scaled(self, scale: float) -> HubSpotLimits:
        """Budgets times `scale` (0 = off); page and search caps stay real."""
        if scale <= 0:
            return replace(self, burst_max=0, daily_max=0, search_per_second=0)
        return replace(self, burst_max=max(1, int(self.burst_max * scale)),
                       daily_max=max(1, int(self.daily_max * scale)),
                       search_per_second=max(1, int(self.search_per_second * scale)))


TIERS: dict[str, HubSpotLimits] = {
    "starter": HubSpotLimits(burst_max=100, daily_max=250_000),
    "professional": HubSpotLimits(),
    "enterprise": HubSpotLimits(daily_max=1_000_000),
}


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided for one request."""

    allowed: bool
    policy: str | None = None  # TEN_SECONDLY_ROLLING, DAILY or SECONDLY when refused
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)  # X-HubSpot-RateLimit-* to send (not on search)


class RateLimiter:
    """Rolling ten-second, daily and search-per-second counters for one token.

    Refused requests do not count. A limit of 0 switches that counter off.
    """

    def __init__(self, limits: HubSpotLimits, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._burst: deque[float] = deque()
        self._search: deque[float] = deque()
        self._day = self._today()
        self._daily_used = 0

    def _today(self) -> int:
        return int(self._wall_clock() // 86_400)

    def check(self, *, search: bool) -> Verdict:
        with self._lock:
            now = self._clock()
            if self._today() != self._day:  # the daily budget resets at midnight (UTC here)
                self._day, self._daily_used = self._today(), 0
            if self.limits.daily_max and self._daily_used >= self.limits.daily_max:
                return Verdict(False, "DAILY", self._seconds_to_midnight(), self._headers(now))
            if search:
                return self._check_search(now)
            return self._check_burst(now)

    def _check_search(self, now: float) -> Verdict:
        per_second = self.limits.search_per_second
        window = self._search
        while window and now - window[0] >= 1.0:
            window.popleft()
        if per_second and len(window) >= per_second:
            return Verdict(False, "SECONDLY", self._wait(window[0] + 1.0 - now))
        window.append(now)
        self._daily_used += 1
        return Verdict(True)

    def _check_burst(self, now: float) -> Verdict:
        interval = self.limits.burst_interval_ms / 1000
        window = self._burst
        while window and now - window[0] >= interval:
            window.popleft()
        if self.limits.burst_max and len(window) >= self.limits.burst_max:
            return Verdict(False, "TEN_SECONDLY_ROLLING", self._wait(window[0] + interval - now),
                           self._headers(now))
        window.append(now)
        self._daily_used += 1
        return Verdict(True, headers=self._headers(now))

    def _wait(self, seconds: float) -> float | None:
        if not self.limits.send_retry_after:
            return None
        wait = float(math.ceil(max(seconds, 0.0)))
        cap = self.limits.retry_after_cap
        return wait if cap is None else min(wait, cap)

    def _seconds_to_midnight(self) -> float | None:
        return self._wait(86_400 - self._wall_clock() % 86_400)

    def _headers(self, now: float) -> dict[str, str]:
        limits = self.limits
        if not limits.burst_max:
            return {}
        remaining = max(limits.burst_max - len(self._burst), 0)
        secondly = max(limits.burst_max // 10, 1)
        recent = sum(1 for stamp in self._burst if now - stamp < 1.0)
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(limits.burst_interval_ms),
            "X-HubSpot-RateLimit-Max": str(limits.burst_max),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(secondly - recent, 0)),
        }
        if limits.daily_max:
            headers["X-HubSpot-RateLimit-Daily"] = str(limits.daily_max)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(limits.daily_max - self._daily_used, 0))
        return headers

    def current_headers(self) -> dict[str, str]:
        """The rate-limit headers as they stand (for error answers that do not count as requests)."""
        with self._lock:
            return self._headers(self._clock())
