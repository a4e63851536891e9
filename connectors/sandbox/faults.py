"""Faults on demand: which requests a sandbox service answers badly, and how.

A `FaultPlan` is an ordered list of `Fault`s. For each request the server asks the plan for the fault to
apply (`take`); the plan counts the requests each fault matches so that `after` and `times` work. The
text form (`FaultPlan.parse`) is documented in FAULTS.md next to this file.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from connectors.sandbox.http import SandboxRequest

SERVICES = ("salesforce", "hubspot")

# Kinds the base server applies itself, whatever the service: kind -> allowed params.
BASE_KINDS: dict[str, frozenset[str]] = {
    "slow": frozenset({"ms"}),
    "truncate": frozenset(),
    "malformed": frozenset(),
    "reset": frozenset(),
    "status": frozenset({"code", "retry_after", "message"}),
}
# Kinds both services implement in `apply_fault`.
SHARED_SERVICE_KINDS: dict[str, frozenset[str]] = {
    "mutate_between_pages": frozenset({"action", "count"}),
    "same_stamp": frozenset({"count"}),
}
# Kinds one service implements in `apply_fault`.
SERVICE_KINDS: dict[str, dict[str, frozenset[str]]] = {
    "salesforce": {
        "session_expired": frozenset(),
        "request_limit": frozenset(),
        "unavailable": frozenset({"retry_after"}),
        **SHARED_SERVICE_KINDS,
    },
    "hubspot": {
        "rate_limit": frozenset({"policy", "retry_after"}),
        "search_rate_limit": frozenset({"retry_after"}),
        **SHARED_SERVICE_KINDS,
    },
}
# Params every kind takes: counting, not behaviour.
COUNTING_PARAMS = frozenset({"after", "times"})
# Params whose value must be an integer (ms, code...) or a number (retry_after).
INTEGER_PARAMS = frozenset({"ms", "code", "count"})
NUMBER_PARAMS = frozenset({"retry_after"})
CHOICE_PARAMS: dict[str, frozenset[str]] = {
    "action": frozenset({"update", "delete"}),
    "policy": frozenset({"TEN_SECONDLY_ROLLING", "DAILY", "SECONDLY"}),
}


class FaultSpecError(ValueError):
    """A fault spec that cannot be parsed; the message names the part and the fix."""


def kinds_for(service: str) -> dict[str, frozenset[str]]:
    """The fault kinds (and their params) a service accepts; "*" accepts those every service has."""
    if service == "*":
        return {**BASE_KINDS, **SHARED_SERVICE_KINDS}
    if service not in SERVICE_KINDS:
        raise FaultSpecError(f"unknown service {service!r}: use one of salesforce, hubspot or *")
    return {**BASE_KINDS, **SERVICE_KINDS[service]}


@dataclass(frozen=True)
class Fault:
    service: str  # "salesforce", "hubspot" or "*"
    kind: str
    match: str | None = None  # regular expression searched in "METHOD path?query"; None = every request
    after: int = 0  # let the first `after` matching requests through untouched
    times: int | None = 1  # how many matching requests it hits after that (None = all)
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        allowed = kinds_for(self.service)
        if self.kind not in allowed:
            raise FaultSpecError(
                f"fault kind {self.kind!r} is not one of {self.service}'s: {', '.join(sorted(allowed))}"
            )
        for name, value in self.params.items():
            _check_param(self.kind, allowed[self.kind], name, value)
        if self.kind == "status" and "code" not in self.params:
            raise FaultSpecError("a status fault needs a code, e.g. salesforce:status:code=503")
        if self.after < 0 or (self.times is not None and self.times < 0):
            raise FaultSpecError(f"fault {self.kind}: after and times must be 0 or more")
        if self.match is not None:
            try:
                re.compile(self.match)
            except re.error as error:
                raise FaultSpecError(f"fault {self.kind}: bad match expression {self.match!r}: {error}") from error

    def matches(self, service: str, request: SandboxRequest) -> bool:
        if self.service not in ("*", service):
            return False
        if self.match is None:
            return True
        return re.search(self.match, f"{request.method} {request.target}") is not None

    def int_param(self, name: str, default: int) -> int:
        value = self.params.get(name)
        return default if value is None else int(value)

    def float_param(self, name: str, default: float) -> float:
        value = self.params.get(name)
        return default if value is None else float(value)

    def retry_after(self, default: float | None) -> float | None:
        """Seconds for the Retry-After header: ``default`` when not given, None for ``retry_after=none``
        (no header at all: urllib3 then does not retry a GET on its own, so the caller's policy is seen)."""
        value = self.params.get("retry_after")
        if value is None:
            return default
        return None if value == "none" else float(value)

    def __str__(self) -> str:
        """The fault in spec form (what the request log records)."""
        text = f"{self.service}:{self.kind}"
        if self.match is not None:
            text += "@" + _quote(self.match)
        settings = []
        if self.after:
            settings.append(f"after={self.after}")
        if self.times != 1:
            settings.append(f"times={'all' if self.times is None else self.times}")
        settings += [f"{name}={_quote(value)}" for name, value in self.params.items()]
        return text + (":" + ",".join(settings) if settings else "")


def _check_param(kind: str, allowed: frozenset[str], name: str, value: str) -> None:
    if name not in allowed:
        hint = ", ".join(sorted(allowed)) or "none"
        raise FaultSpecError(f"fault kind {kind!r} takes no param {name!r} (its params: {hint}; all: after, times)")
    if name in INTEGER_PARAMS and not re.fullmatch(r"\d+", value):
        raise FaultSpecError(f"fault {kind}: {name}={value!r} must be a whole number")
    if name in NUMBER_PARAMS and not re.fullmatch(r"\d+(\.\d+)?|none", value):
        raise FaultSpecError(f"fault {kind}: {name}={value!r} must be a number of seconds, or none for no "
                             "Retry-After header")
    if name in CHOICE_PARAMS and value not in CHOICE_PARAMS[name]:
        raise FaultSpecError(f"fault {kind}: {name}={value!r} must be one of {', '.join(sorted(CHOICE_PARAMS[name]))}")


def _quote(text: str) -> str:
    if re.fullmatch(r"[^\s:;,=\"@]*", text):
        return text
    return '"' + text.replace('"', '""') + '"'


class _Cursor:
    """Reads a fault spec left to right; errors point at the column."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.pos = 0

    def error(self, message: str) -> FaultSpecError:
        return FaultSpecError(f"{message} at column {self.pos + 1} of fault spec {self.spec!r}")

    def peek(self) -> str:
        return self.spec[self.pos] if self.pos < len(self.spec) else ""

    def skip_spaces(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def accept(self, char: str) -> bool:
        self.skip_spaces()
        if self.peek() == char:
            self.pos += 1
            return True
        return False

    def word(self, what: str) -> str:
        self.skip_spaces()
        found = re.compile(r"[A-Za-z_*][A-Za-z0-9_]*").match(self.spec, self.pos)
        if not found:
            raise self.error(f"expected {what}")
        self.pos = found.end()
        return found.group()

    def value(self, stops: str) -> str:
        """A bare value (up to one of `stops`) or a double-quoted one."""
        self.skip_spaces()
        if self.peek() == '"':
            return self._quoted()
        start = self.pos
        while self.pos < len(self.spec) and self.spec[self.pos] not in stops:
            self.pos += 1
        return self.spec[start:self.pos].strip()

    def _quoted(self) -> str:
        # Inside double quotes everything is literal (backslashes too, for regular expressions);
        # a doubled quote "" stands for one ".
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.spec):
            char = self.spec[self.pos]
            self.pos += 1
            if char != '"':
                chars.append(char)
            elif self.peek() == '"':
                chars.append('"')
                self.pos += 1
            else:
                return "".join(chars)
        raise self.error("unterminated quoted string")


def _parse_one(cursor: _Cursor) -> Fault:
    service = cursor.word("a service (salesforce, hubspot or *)")
    if not cursor.accept(":"):
        raise cursor.error(f"expected ':' and a fault kind after {service!r}")
    kind = cursor.word("a fault kind")
    match = cursor.value(":;") if cursor.accept("@") else None
    settings: dict[str, str] = {}
    if cursor.accept(":"):
        while True:
            name = cursor.word("a param name")
            if not cursor.accept("="):
                raise cursor.error(f"expected '=' after param {name!r}")
            if name in settings:
                raise cursor.error(f"param {name!r} given twice")
            settings[name] = cursor.value(",;")
            if not cursor.accept(","):
                break
    cursor.skip_spaces()
    if cursor.peek() not in ("", ";"):
        raise cursor.error(f"unexpected {cursor.peek()!r}")
    return _build_fault(cursor, service, kind, match, settings)


def _build_fault(cursor: _Cursor, service: str, kind: str, match: str | None, settings: dict[str, str]) -> Fault:
    after_text = settings.pop("after", "0")
    times_text = settings.pop("times", "1")
    if not after_text.isdigit():
        raise cursor.error(f"after={after_text!r} must be a whole number")
    if times_text not in ("all", "*") and not times_text.isdigit():
        raise cursor.error(f"times={times_text!r} must be a whole number or 'all'")
    times = None if times_text in ("all", "*") else int(times_text)
    return Fault(service, kind, match or None, int(after_text), times, settings)


class FaultPlan:
    """The faults a server applies, in order; thread-safe."""

    def __init__(self, faults: list[Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._seen: list[int] = []  # requests each fault matched (and was offered)
        self._hits: list[int] = []  # requests each fault was applied to
        for fault in faults or []:
            self.add(fault)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """Faults from their text form, e.g. 'hubspot:rate_limit@/search/:after=2,times=3;salesforce:reset'."""
        plan = cls()
        cursor = _Cursor(spec or "")
        cursor.skip_spaces()
        while cursor.peek():
            if cursor.accept(";"):  # empty entries (a trailing ';') are allowed
                continue
            plan.add(_parse_one(cursor))
            cursor.accept(";")
            cursor.skip_spaces()
        return plan

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)
            self._seen.append(0)
            self._hits.append(0)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._seen.clear()
            self._hits.clear()

    def take(self, service: str, request: SandboxRequest) -> Fault | None:
        """The fault to apply to this request, or None.

        Faults are offered the request in order; each counts the requests it matches. The first one whose
        count falls past `after` and within `times` takes the request; later faults do not see it, so
        'a;b' on the same requests applies a, then b once a is used up.
        """
        with self._lock:
            for index, fault in enumerate(self._faults):
                if not fault.matches(service, request):
                    continue
                self._seen[index] += 1
                seen = self._seen[index]
                if seen <= fault.after or (fault.times is not None and seen > fault.after + fault.times):
                    continue
                self._hits[index] += 1
                return fault
        return None

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def hits(self, kind: str | None = None) -> int:
        """How many requests faults (of `kind`, or any) were applied to."""
        with self._lock:
            return sum(hits for fault, hits in zip(self._faults, self._hits, strict=True)
                       if kind is None or fault.kind == kind)

    def pending(self) -> list[Fault]:
        """Faults that still have requests to hit (a test can assert all its faults fired)."""
        with self._lock:
            return [fault for fault, hits in zip(self._faults, self._hits, strict=True)
                    if fault.times is None or hits < fault.times]

    def __iter__(self) -> Iterator[Fault]:
        return iter(self.faults)

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)

    def __str__(self) -> str:
        return ";".join(str(fault) for fault in self.faults)
