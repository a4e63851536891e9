"""Logging in to the Salesforce sandbox: the OAuth token endpoint, SOAP login and the sessions they issue.

simple-salesforce builds every login URL as `https://{domain}.salesforce.com/...`; passing
`domain="127.0.0.1:PORT/sfauth"` makes that `https://127.0.0.1:PORT/sfauth.salesforce.com/services/...`, so
the service answers any path that ends in `/services/oauth2/token` or `/services/Soap/u/{version}`.
Successes and failures have Salesforce's shapes: the token JSON (`access_token`, `instance_url`, ...), OAuth
errors `{"error": ..., "error_description": ...}`, SOAP `loginResponse` and `sf:LoginFault`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import xml.dom.minidom
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError
from xml.sax.saxutils import escape

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connectors.sandbox.http import SandboxRequest, SandboxResponse

from .ids import make_id

ORG_ID = make_id("00D", 1)
INTEGRATION_USER_ID = make_id("005", 0)  # the API user; world reps are 1, 2, ...
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
STANDARD_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
TOKEN_PATH = re.compile(r"/services/oauth2/token/?$")
SOAP_PATH = re.compile(r"/services/Soap/u/(\d+\.\d+)/?$")
DEFAULT_SESSION_SECONDS = 2 * 60 * 60  # Salesforce's default session timeout
INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."


@dataclass(frozen=True)
class SalesforceCredentials:
    """What the sandbox org accepts: a user's login and one connected app (consumer key and secret).

    `jwt_public_key`: PEM of the connected app's certificate or public key, for the JWT bearer flow
    (None: that flow is refused). Make a pair for tests with `generate_jwt_key_pair()`.
    """

    username: str
    password: str
    security_token: str
    consumer_key: str
    consumer_secret: str
    jwt_public_key: str | None = None
    user_full_name: str = "KPI Agent Integration"

    @classmethod
    def default(cls) -> SalesforceCredentials:
        return cls(
            username="kpi-agent@sandbox.example.com",
            password="sandbox-password",
            security_token="SandboxSecurityToken0",
            consumer_key="3MVG9sandbox.kpi.agent.consumer.key",
            consumer_secret="sandbox-consumer-secret",
        )


def generate_jwt_key_pair() -> tuple[str, str]:
    """(private key PEM, public key PEM) for the JWT bearer flow in tests and demos."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem


@dataclass
class Session:
    token: str
    issued_at: float
    expires_at: float
    grant: str


@dataclass
class SessionStore:
    """Access tokens the sandbox issued; unknown, expired or revoked ones are INVALID_SESSION_ID."""

    lifetime_seconds: float = DEFAULT_SESSION_SECONDS
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, grant: str) -> Session:
        now = time.time()
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(72)}"
        session = Session(token, now, now + self.lifetime_seconds, grant)
        with self._lock:
            self._sessions[token] = session
        return session

    def find(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is not None and session.expires_at <= time.time():
                del self._sessions[token]
                session = None
        return session

    def revoke(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def revoke_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def count(self) -> int:
        with self._lock:
            return len(self._sessions)


def bearer_token(request: SandboxRequest) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


class LoginEndpoints:
    """The token endpoint and SOAP login of the sandbox org."""

    def __init__(self, credentials: SalesforceCredentials, sessions: SessionStore, home_currency: str,
                 org_timezone: str) -> None:
        self.credentials = credentials
        self.sessions = sessions
        self.home_currency = home_currency
        self.org_timezone = org_timezone
        self._public_key = _load_public_key(credentials.jwt_public_key) if credentials.jwt_public_key else None

    @staticmethod
    def is_login_path(path: str) -> bool:
        return bool(TOKEN_PATH.search(path) or SOAP_PATH.search(path))

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if TOKEN_PATH.search(request.path):
            if request.method != "POST":
                return _oauth_error("invalid_request", "must use HTTP POST", 400)
            return self.token(request)
        soap = SOAP_PATH.search(request.path)
        assert soap is not None
        if request.method != "POST":
            return soap_fault("INVALID_LOGIN", "SOAP login takes POST", status=405)
        return self.soap_login(request, soap.group(1))

    # -- OAuth 2.0 token endpoint ----------------------------------------------------------------------

    def token(self, request: SandboxRequest) -> SandboxResponse:
        try:
            form = request.form()
        except (UnicodeDecodeError, ValueError):
            return _oauth_error("invalid_request", "invalid request body", 400)
        grant = form.get("grant_type", "")
        if grant == "password":
            failure = self._check_client(form.get("client_id"), form.get("client_secret"))
            if failure is None and not (form.get("username") == self.credentials.username
                                        and self._password_ok(form.get("password"))):
                failure = _oauth_error("invalid_grant", "authentication failure", 400)
        elif grant == "client_credentials":
            client_id, client_secret = _basic_credentials(request)
            failure = self._check_client(client_id or form.get("client_id"),
                                         client_secret or form.get("client_secret"))
        elif grant == JWT_GRANT:
            failure = self._check_assertion(form.get("assertion", ""), request)
        elif not grant:
            failure = _oauth_error("invalid_request", "grant type not specified", 400)
        else:
            failure = _oauth_error("unsupported_grant_type", "grant type not supported", 400)
        if failure is not None:
            return failure
        session = self.sessions.issue(grant)
        issued_at = str(int(session.issued_at * 1000))
        identity = f"https://login.salesforce.com/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        signature = base64.b64encode(hmac.new(self.credentials.consumer_secret.encode(),
                                              (identity + issued_at).encode(), hashlib.sha256).digest()).decode()
        body = {"access_token": session.token, "instance_url": instance_url(request), "id": identity,
                "token_type": "Bearer", "issued_at": issued_at, "signature": signature}
        if grant != "client_credentials":
            body["scope"] = "api"
        no_store = "no-cache,must-revalidate,max-age=0,no-store,private"
        return SandboxResponse.json(body, headers={"Cache-Control": no_store})

    def _password_ok(self, password: str | None) -> bool:
        # Loopback counts as a trusted IP range: the password alone is enough, or password + token.
        expected = self.credentials.password
        return password in (expected, expected + self.credentials.security_token)

    def _check_client(self, client_id: str | None, client_secret: str | None) -> SandboxResponse | None:
        if client_id != self.credentials.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid", 400)
        if client_secret != self.credentials.consumer_secret:
            return _oauth_error("invalid_client", "invalid client credentials", 400)
        return None

    def _check_assertion(self, assertion: str, request: SandboxRequest) -> SandboxResponse | None:
        if self._public_key is None:
            return _oauth_error("invalid_client", "no certificate is configured for this connected app "
                                "(SalesforceCredentials.jwt_public_key)", 400)
        claims = _verified_claims(assertion, self._public_key)
        if claims is None:
            return _oauth_error("invalid_grant", "invalid assertion", 400)
        if claims.get("iss") != self.credentials.consumer_key:
            return _oauth_error("invalid_client_id", "client identifier invalid", 400)
        if claims.get("aud") not in (*STANDARD_AUDIENCES, own_audience(request)):
            return _oauth_error("invalid_grant", "audience is invalid", 400)
        try:
            expires = float(claims.get("exp"))  # simple-salesforce sends it as a string
        except (TypeError, ValueError):
            return _oauth_error("invalid_grant", "invalid assertion", 400)
        if expires <= time.time():
            return _oauth_error("invalid_grant", "expired authorization code", 400)
        if claims.get("sub") != self.credentials.username:
            return _oauth_error("invalid_grant", "user hasn't approved this consumer", 400)
        return None

    # -- SOAP login --------------------------------------------------------------------------------------

    def soap_login(self, request: SandboxRequest, version: str) -> SandboxResponse:
        try:
            document = xml.dom.minidom.parseString(request.body)
        except ExpatError:
            return soap_fault("INVALID_LOGIN", "Unable to parse the login request", status=500,
                              code_prefix="soapenv:Client")
        username = _element_text(document, "username")
        password = _element_text(document, "password")
        organization_id = _element_text(document, "organizationId")
        if username != self.credentials.username or not self._password_ok(password):
            return soap_fault("INVALID_LOGIN", INVALID_LOGIN_MESSAGE)
        if organization_id is not None and organization_id not in (ORG_ID, ORG_ID[:15]):
            return soap_fault("INVALID_LOGIN", INVALID_LOGIN_MESSAGE)
        session = self.sessions.issue("soap")
        base = instance_url(request)
        server_url = f"{base}/services/Soap/u/{version}/{ORG_ID[:15]}"
        return SandboxResponse.text(self._login_response(session.token, server_url, base, version), 200,
                                    content_type="text/xml; charset=utf-8")

    def _login_response(self, session_id: str, server_url: str, base: str, version: str) -> str:
        user = self.credentials
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{escape(base)}/services/Soap/m/{version}/{ORG_ID[:15]}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{escape(server_url)}</serverUrl>"
            f"<sessionId>{escape(session_id)}</sessionId>"
            f"<userId>{INTEGRATION_USER_ID}</userId>"
            "<userInfo><accessibilityMode>false</accessibilityMode><chatterExternal>false</chatterExternal>"
            f"<currencySymbol>{escape(self.home_currency)}</currencySymbol>"
            "<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit>"
            f"<orgDefaultCurrencyIsoCode>{escape(self.home_currency)}</orgDefaultCurrencyIsoCode>"
            "<orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments><orgHasPersonAccounts>false"
            f"</orgHasPersonAccounts><organizationId>{ORG_ID}</organizationId>"
            "<organizationMultiCurrency>true</organizationMultiCurrency>"
            "<organizationName>KPI Agent Sandbox</organizationName><profileId>00e8d0000000001AAA</profileId>"
            "<roleId xsi:nil=\"true\"/><sessionSecondsValid>7200</sessionSecondsValid>"
            f"<userDefaultCurrencyIsoCode xsi:nil=\"true\"/><userEmail>{escape(user.username)}</userEmail>"
            f"<userFullName>{escape(user.user_full_name)}</userFullName><userId>{INTEGRATION_USER_ID}</userId>"
            f"<userLanguage>en_US</userLanguage><userLocale>en_US</userLocale>"
            f"<userName>{escape(user.username)}</userName>"
            f"<userTimeZone>{escape(self.org_timezone)}</userTimeZone><userType>Standard</userType>"
            "<userUiSkin>Theme3</userUiSkin></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )


def instance_url(request: SandboxRequest) -> str:
    """The org's own base URL as the client reached it (Host header), e.g. https://127.0.0.1:PORT."""
    host = request.headers.get("host") or "127.0.0.1"
    return f"https://{host}"


def own_audience(request: SandboxRequest) -> str:
    """The `aud` simple-salesforce writes for this token endpoint: https://{domain}.salesforce.com."""
    prefix = TOKEN_PATH.split(request.path)[0]
    return instance_url(request) + prefix


def oauth_error(error: str, description: str, status: int) -> SandboxResponse:
    return _oauth_error(error, description, status)


def _oauth_error(error: str, description: str, status: int) -> SandboxResponse:
    return SandboxResponse.json({"error": error, "error_description": description}, status=status)


def soap_fault(code: str, message: str, status: int = 500, code_prefix: str | None = None) -> SandboxResponse:
    faultcode = code_prefix or f"sf:{code}"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<soapenv:Body><soapenv:Fault>"
        f"<faultcode>{escape(faultcode)}</faultcode><faultstring>{escape(code)}: {escape(message)}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{escape(code)}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return SandboxResponse.text(body, status, content_type="text/xml; charset=utf-8")


def _element_text(document: xml.dom.minidom.Document, local_name: str) -> str | None:
    for element in document.getElementsByTagNameNS("*", local_name):
        return "".join(node.data for node in element.childNodes if node.nodeType == node.TEXT_NODE)
    return None


def _basic_credentials(request: SandboxRequest) -> tuple[str | None, str | None]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    client_id, separator, client_secret = decoded.partition(":")
    return (client_id, client_secret) if separator else (None, None)


def _load_public_key(pem: str) -> rsa.RSAPublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    if b"CERTIFICATE" in data:
        from cryptography import x509

        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the JWT bearer flow needs an RSA key (RS256): jwt_public_key holds another kind")
    return key


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verified_claims(assertion: str, public_key: rsa.RSAPublicKey) -> dict[str, Any] | None:
    """The JWT's claims if it is a well-formed RS256 token signed by the connected app's key."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        return None
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return None
    return claims
