"""HubSpot's error bodies and headers, as the real API sends them.

Ordinary errors: `{"status":"error","message":...,"correlationId":uuid,"category":...}` plus optional
`subCategory`, `context`, `errors`, `links` (api-notes §2.4). Rate-limit 429s use `errorType` and
`policyName` instead of a category (api-notes §2.5; HubSpot/hubspot-api-python#117 shows a real one).
Every answer carries `X-HubSpot-Correlation-Id`, the same id as in the body.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

from connectors.sandbox.http import SandboxResponse

PORTAL_ID = 20_260_304  # the sandbox account's hub id (shown in rate-limit group names)

AUTH_MESSAGE = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
CATEGORY_BY_STATUS = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
                      404: "OBJECT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
                      414: "URI_TOO_LONG", 415: "UNSUPPORTED_MEDIA_TYPE", 423: "LOCKED",
                      500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
                      504: "GATEWAY_TIMEOUT"}
MESSAGE_BY_STATUS = {400: "There was a problem with the request.", 403: "This app hasn't been granted all "
                     "required scopes to make this call.", 404: "resource not found", 409: "Conflict",
                     500: "internal error", 502: "Bad Gateway: the upstream service did not answer.",
                     503: "Service Unavailable: the service is temporarily unable to handle the request.",
                     504: "Gateway Timeout: the upstream service did not answer in time."}
RATE_LIMIT_MESSAGES = {"TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
                       "DAILY": "You have reached your daily limit.",
                       "SECONDLY": "You have reached your secondly limit."}
RATE_LIMIT_GROUPS = {"TEN_SECONDLY_ROLLING": "publicapi:private-app-api-calls-ten-secondly",
                     "DAILY": "publicapi:private-app-api-calls-daily",
                     "SECONDLY": "publicapi:search-api-calls-secondly"}


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """Retry-After in whole seconds (None or negative = no header)."""
    if seconds is None or seconds < 0:
        return {}
    return {"Retry-After": str(int(math.ceil(seconds)))}


def error(status: int, message: str | None = None, *, category: str | None = None,
          sub_category: str | None = None, context: Mapping[str, list[str]] | None = None,
          errors: list[dict[str, Any]] | None = None, headers: Mapping[str, str] | None = None) -> SandboxResponse:
    correlation_id = new_correlation_id()
    body: dict[str, Any] = {
        "status": "error",
        "message": message or MESSAGE_BY_STATUS.get(status, "An error occurred"),
        "correlationId": correlation_id,
        "category": category or CATEGORY_BY_STATUS.get(status, "VALIDATION_ERROR" if status < 500 else
                                                        "INTERNAL_ERROR"),
    }
    if sub_category:
        body["subCategory"] = sub_category
    if context:
        body["context"] = {key: list(values) for key, values in context.items()}
    if errors:
        body["errors"] = errors
    return SandboxResponse.json(body, status, {**(headers or {}), "X-HubSpot-Correlation-Id": correlation_id})


def unauthorized() -> SandboxResponse:
    return error(401, AUTH_MESSAGE, category="INVALID_AUTHENTICATION")


def rate_limited(policy: str, *, retry_after: float | None,
                 headers: Mapping[str, str] | None = None) -> SandboxResponse:
    correlation_id = new_correlation_id()
    body = {
        "status": "error",
        "message": RATE_LIMIT_MESSAGES.get(policy, RATE_LIMIT_MESSAGES["TEN_SECONDLY_ROLLING"]),
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id,
        "policyName": policy,
        "groupName": f"{RATE_LIMIT_GROUPS.get(policy, RATE_LIMIT_GROUPS['TEN_SECONDLY_ROLLING'])}:{PORTAL_ID}",
    }
    merged = {**(headers or {}), **retry_after_header(retry_after), "X-HubSpot-Correlation-Id": correlation_id}
    return SandboxResponse.json(body, 429, merged)
