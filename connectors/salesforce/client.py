"""A logged-in Salesforce org for the connector: login by every supported auth, retries, budget, re-login.

- **Auth**: username/password/security token (SOAP; OAuth username-password when a consumer key and secret
  are given without a token), OAuth client credentials, JWT bearer, or a session id with its instance URL.
  The requests session trusts ``ca_bundle`` (``verify``), so a private CA (the sandbox's) works.
- **Retries**: 5xx (503 ``SERVER_UNAVAILABLE`` ...) and connection failures back off with jitter, honouring
  ``Retry-After`` (read from the response by a session hook, since simple-salesforce's exceptions keep no
  headers).  Malformed queries and unknown fields are not retried.
- **Session expiry**: REST calls rely on simple-salesforce's own re-login (it logs in again on a 401
  ``INVALID_SESSION_ID`` and repeats the call); calls it does not cover (Bulk API 2.0 through
  ``_Bulk2Client``) are repeated here after :meth:`SalesforceClient.relogin`.  Session-id auth cannot log
  in again and stops with "session expired: supply new credentials".
- **Budget**: ``REQUEST_LIMIT_EXCEEDED``, or ``Sforce-Limit-Info`` showing the configured share of the daily
  API requests used, stops the object cleanly (:class:`~agent.sync.retry.BudgetExhausted`).

No secret is ever put in a message: errors name the connection, the auth mode and the config keys.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import requests.adapters

from agent.config import SalesforceConnection
from agent.sync.retry import (
    BudgetExhausted,
    CredentialsExpired,
    Decision,
    RetryPolicy,
    call_with_retry,
    classify_transport_error,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from simple_salesforce import Salesforce

log = logging.getLogger(__name__)

T = TypeVar("T")
SESSION_EXPIRED = "session expired: supply new credentials"
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class ConnectorError(Exception):
    """A problem the config or the org must fix; the message says which key or permission."""


class SalesforceClient:
    """One connection's org: a lazily logged-in simple-salesforce client plus the connector's policies."""

    def __init__(self, name: str, config: SalesforceConnection, policy: RetryPolicy, *,
                 page_size: int = 2000) -> None:
        self.name = name
        self.config = config
        self.policy = policy
        self.page_size = page_size
        self.session = self._requests_session()
        self._sf: Salesforce | None = None
        self._login_error: Exception | None = None
        self._expired = False
        self.last_retry_after: float | None = None
        self.api_used: int | None = None
        self.api_total: int | None = None
        self.requests_sent = 0

    # -- session and login --------------------------------------------------------------------------------

    def _requests_session(self) -> requests.Session:
        session = requests.Session()
        if self.config.ca_bundle is not None:
            # Session.verify alone loses to REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment
            # (requests' merge_environment_settings); the adapter makes the configured CA win, while proxy
            # settings from the environment still apply.
            session.verify = str(self.config.ca_bundle)
            session.mount("https://", _TrustingAdapter(str(self.config.ca_bundle)))
        session.hooks["response"].append(self._observe)
        return session

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Every answer passes here: remember the API usage and a Retry-After for the retry policy."""
        self.requests_sent += 1
        usage = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if usage:
            self.api_used, self.api_total = int(usage.group(1)), int(usage.group(2))
        self.last_retry_after = (retry_after_seconds(response.headers.get("Retry-After"))
                                 if response.status_code >= 400 else None)

    @property
    def sf(self) -> Salesforce:
        if self._expired:
            raise CredentialsExpired(f"{self.name}: {SESSION_EXPIRED}")
        if self._login_error is not None:
            raise ConnectorError(str(self._login_error))
        if self._sf is None:
            try:
                self._sf = call_with_retry(self._login, policy=self.policy, classify=self._classify_login,
                                           what=f"Salesforce login of {self.name}")
            except requests.exceptions.SSLError:
                self._login_error = ConnectorError(
                    f"{self.name}: Salesforce's TLS certificate is not trusted; set ca_bundle in "
                    f"[connections.{self.name}] to the CA file that signed it")
                raise self._login_error from None
            except (requests.ConnectionError, requests.Timeout) as error:
                # Given up after the policy's retries: later objects of this run fail at once, not again slowly.
                self._login_error = ConnectorError(f"{self.name}: cannot reach Salesforce to log in "
                                                   f"({type(error).__name__}); check domain and the network")
                raise self._login_error from None
        return self._sf

    def _login(self) -> Salesforce:
        from simple_salesforce import Salesforce
        from simple_salesforce.exceptions import SalesforceAuthenticationFailed

        try:
            return Salesforce(**self._login_arguments(), session=self.session, version=self.config.api_version)
        except SalesforceAuthenticationFailed as error:
            self._login_error = ConnectorError(
                f"{self.name}: Salesforce refused the login (auth = {self.config.auth!r}: {error.code}); "
                f"check {', '.join(self._credential_keys())} in [connections.{self.name}]")
            raise self._login_error from None

    def _login_arguments(self) -> dict[str, Any]:
        config = self.config
        secret = _secret
        if config.auth == "session":
            return {"session_id": secret(config.session_id), "instance_url": config.instance_url}
        if config.auth == "client_credentials":
            return {"consumer_key": config.consumer_key, "consumer_secret": secret(config.consumer_secret),
                    "domain": config.domain}
        if config.auth == "jwt":
            return {"username": config.username, "consumer_key": config.consumer_key,
                    "privatekey_file": str(config.private_key_file), "domain": config.domain}
        if config.security_token is None and config.consumer_key and config.consumer_secret:
            return {"username": config.username, "password": secret(config.password),
                    "consumer_key": config.consumer_key, "consumer_secret": secret(config.consumer_secret),
                    "domain": config.domain}
        return {"username": config.username, "password": secret(config.password),
                "security_token": secret(config.security_token) or "", "domain": config.domain}

    def _credential_keys(self) -> list[str]:
        return {"password": ["username", "password", "security_token", "domain"],
                "client_credentials": ["consumer_key", "consumer_secret", "domain"],
                "jwt": ["username", "consumer_key", "private_key_file", "domain"],
                "session": ["session_id", "instance_url"]}[self.config.auth]

    def _classify_login(self, error: BaseException) -> Decision:
        transport = classify_transport_error(error)
        if transport is not None:
            return transport
        return self._classify_status(error)

    def relogin(self) -> None:
        """A new session (for the calls simple-salesforce does not re-login itself, i.e. Bulk API 2.0)."""
        if self.config.auth == "session":
            self._expired = True
            raise CredentialsExpired(f"{self.name}: {SESSION_EXPIRED}")
        log.info("%s: Salesforce session expired; logging in again", self.name)
        self._sf = None
        _ = self.sf

    @property
    def is_direct_session(self) -> bool:
        return self.config.auth == "session"

    # -- calls --------------------------------------------------------------------------------------------

    def call(self, what: str, function: Callable[[Salesforce], T]) -> T:
        """``function(sf)`` with the retry policy, budget check and re-login for expired sessions."""
        from simple_salesforce.exceptions import SalesforceExpiredSession

        relogins = 0
        while True:
            self.check_budget()
            try:
                return call_with_retry(lambda: function(self.sf), policy=self.policy, classify=self.classify,
                                       what=f"{self.name}: {what}")
            except SalesforceExpiredSession:
                if self.is_direct_session:
                    self._expired = True
                    raise CredentialsExpired(f"{self.name}: {SESSION_EXPIRED}") from None
                relogins += 1
                if relogins > 3:
                    raise ConnectorError(f"{self.name}: the Salesforce session expires again right after each "
                                         "login; check the connected app's session policies") from None
                self.relogin()

    def classify(self, error: BaseException) -> Decision:
        transport = classify_transport_error(error)
        if transport is not None:
            return transport
        return self._classify_status(error)

    def _classify_status(self, error: BaseException) -> Decision:
        from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

        if isinstance(error, SalesforceRefusedRequest) and "REQUEST_LIMIT_EXCEEDED" in str(error.content):
            raise BudgetExhausted(f"{self.name}: Salesforce refused the request: the org's daily API request "
                                  "limit is spent (REQUEST_LIMIT_EXCEEDED); the sync resumes from its cursor once "
                                  "the rolling 24-hour limit allows") from None
        status = getattr(error, "status", None)
        if isinstance(error, SalesforceGeneralError) and isinstance(status, int) and (status >= 500 or status == 429):
            return Decision(True, self.last_retry_after, f"Salesforce answered {status}")
        return Decision(False)

    def check_budget(self) -> None:
        """Stop before going past the configured share of the org's daily API requests."""
        if self.api_used is None or not self.api_total:
            return
        share = self.config.api_budget_share
        if self.api_used >= self.api_total * share:
            raise BudgetExhausted(
                f"{self.name}: {self.api_used} of the org's {self.api_total} daily API requests are used, which "
                f"reaches api_budget_share = {share:g}; the sync stops here and resumes from its cursor later "
                f"(raise api_budget_share in [connections.{self.name}] to allow more)")

    # -- queries ------------------------------------------------------------------------------------------

    def query_pages(self, soql: str, *, include_deleted: bool, what: str) -> Iterator[dict[str, Any]]:
        """The pages of a SOQL query, following ``nextRecordsUrl`` (a server-side cursor, never OFFSET)."""
        headers = {"Sforce-Query-Options": f"batchSize={self.page_size}"}
        # The page is handed over from a list, so this suspended generator holds no reference to it while
        # the caller converts and writes it (and fetches the next).
        pending = [self.call(what, lambda sf: sf.query(soql, include_deleted=include_deleted, headers=headers))]
        while pending:
            next_url = None if pending[0].get("done", True) else pending[0].get("nextRecordsUrl")
            yield pending.pop()
            if not next_url:
                return
            pending.append(self.call(what, lambda sf, url=next_url: sf.query_more(
                url, identifier_is_url=True, headers=headers)))

    def query_records(self, soql: str, *, include_deleted: bool = False, what: str) -> Iterator[dict[str, Any]]:
        for page in self.query_pages(soql, include_deleted=include_deleted, what=what):
            yield from page.get("records", [])

    def count(self, soql: str, *, what: str) -> int:
        return int(self.call(what, lambda sf: sf.query(soql))["totalSize"])

    def describe(self, object_name: str) -> dict[str, Any] | None:
        """The object's describe, or None when the org has no such object."""
        from simple_salesforce.exceptions import SalesforceResourceNotFound

        try:
            return self.call(f"describe of {object_name}", lambda sf: getattr(sf, object_name).describe())
        except SalesforceResourceNotFound:
            return None

    def close(self) -> None:
        self.session.close()


class _TrustingAdapter(requests.adapters.HTTPAdapter):
    """Verifies TLS against the configured CA bundle whatever the environment says."""

    def __init__(self, ca_bundle: str) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self.ca_bundle
        return super().send(request, *args, **kwargs)


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()
