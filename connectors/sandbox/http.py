"""The request and response values that pass between the sandbox server and a CRM service.

A service (Salesforce, HubSpot, or a test's own) sees one `SandboxRequest` per HTTP request and answers
with a `SandboxResponse`. The server (`server.py`) owns sockets, TLS, keep-alive, chunking and faults, so a
service is plain request-in, response-out code.
"""

from __future__ import annotations

import json as _json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from connectors.sandbox.faults import Fault


@dataclass(frozen=True)
class SandboxRequest:
    method: str  # "GET", "POST", ...
    path: str  # URL path without the query string, as sent (not decoded)
    query: Mapping[str, list[str]]  # parse_qs(query_string, keep_blank_values=True)
    headers: Mapping[str, str]  # header names lower-cased; repeated headers joined with ", "
    body: bytes
    query_string: str = ""  # the raw query string, as sent (faults match against it)

    @classmethod
    def build(cls, method: str, target: str, headers: Mapping[str, str] | None = None,
              body: bytes = b"") -> SandboxRequest:
        """A request from a method and a request target ("/path?query"), for tests and the server."""
        path, _, query_string = target.partition("?")
        return cls(
            method=method.upper(),
            path=path,
            query=parse_qs(query_string, keep_blank_values=True),
            headers={name.lower(): value for name, value in (headers or {}).items()},
            body=body,
            query_string=query_string,
        )

    @property
    def target(self) -> str:
        """"path?query" as sent (just the path when there is no query string)."""
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError (json.JSONDecodeError) on a bad body."""
        return _json.loads(self.body.decode("utf-8") if self.body else "")

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body, first value of each field."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}

    def first(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter `name`, or `default`."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class SandboxResponse:
    status: int
    body: bytes | Iterable[bytes] = b""  # an iterable is streamed with chunked transfer encoding
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> SandboxResponse:
        payload = _json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        merged = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
        return cls(status=status, body=payload, headers=merged)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8",
             headers: dict[str, str] | None = None) -> SandboxResponse:
        merged = {"Content-Type": content_type, **(headers or {})}
        return cls(status=status, body=text.encode("utf-8"), headers=merged)

    def header(self, name: str) -> str | None:
        """A header's value, looked up without regard to case."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None

    @property
    def is_streamed(self) -> bool:
        return not isinstance(self.body, (bytes, bytearray, memoryview))

    def body_bytes(self) -> bytes:
        """The whole body (joins a streamed body; only for small ones and faults that need all of it)."""
        if isinstance(self.body, (bytes, bytearray, memoryview)):
            return bytes(self.body)
        return b"".join(self.body)


class SandboxService(Protocol):
    name: str  # "salesforce" or "hubspot"

    def handle(self, request: SandboxRequest) -> SandboxResponse: ...

    def error_response(self, fault: Fault, request: SandboxRequest) -> SandboxResponse:
        """The vendor's own error body and headers for a `status` fault and the service's error kinds."""
        ...

    def apply_fault(self, fault: Fault, request: SandboxRequest) -> SandboxResponse | None:
        """Service-specific fault kinds: a response to answer with, or None to handle the request."""
        ...
