"""Helpers for tests, the demo and connector authors: small hand-made worlds and a running sandbox.

    world = make_world(tmp_path, {"teams": [...], "reps": [...], "opportunities": [...]})
    with running_sandbox(world, serve_as="split", faults="hubspot:rate_limit:times=2") as sandbox:
        sf = sandbox.salesforce_client()
        hs = sandbox.hubspot_client()
        assert sandbox.log.count(service="hubspot", status=429) == 2

The Salesforce and HubSpot services are imported only when served, so a sandbox of one works alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter

from connectors.sandbox.faults import FaultPlan
from connectors.sandbox.server import RequestLog, SandboxServer
from connectors.sandbox.tls import TLSFiles, default_tls_dir, ensure_test_ca
from connectors.sandbox.world.schema import TABLE_ORDER
from connectors.sandbox.world.store import World, WorldError

if TYPE_CHECKING:
    import hubspot
    import simple_salesforce

SERVE_AS = ("salesforce", "hubspot", "split")
SALESFORCE_API_VERSION = "59.0"
# The path prefix that turns simple-salesforce's login URL, https://{domain}.salesforce.com/..., into one on
# the sandbox: domain "127.0.0.1:PORT/sfauth" -> https://127.0.0.1:PORT/sfauth.salesforce.com/services/...
SALESFORCE_LOGIN_PREFIX = "sfauth"

_world_numbers = itertools.count(1)


class HttpsToHttpAdapter(HTTPAdapter):
    """Sends simple-salesforce's hard-coded https:// URLs to a plain-http sandbox."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        request.url = "http://" + str(request.url)[len("https://"):]
        return super().send(request, *args, **kwargs)


def make_world(tmp_path: Path, tables: Mapping[str, list[dict[str, Any]]], **world_fields: Any) -> World:
    """A small hand-made world in `tmp_path` from records in the world format (docs/sandbox-world.md).

    `world_fields` are the `world` line's keys (seed, size, home_currency, timezone, now). Tables are
    loaded parents first whatever the mapping's order; `crm` is derived as for a loaded world.
    """
    unknown = set(tables) - set(TABLE_ORDER)
    if unknown:
        raise WorldError(f"make_world: no table {', '.join(sorted(unknown))} (tables: {', '.join(TABLE_ORDER)})")
    path = Path(tmp_path) / f"world-{next(_world_numbers)}.sqlite"
    while path.exists():
        path = Path(tmp_path) / f"world-{next(_world_numbers)}.sqlite"
    world = World.create(path, **world_fields)
    for table in TABLE_ORDER:
        if tables.get(table):
            world.insert(table, tables[table])
    world.derive_crm()
    return world


@dataclass
class RunningSandbox:
    world: World
    serve_as: str
    salesforce: SandboxServer | None
    hubspot: SandboxServer | None
    log: RequestLog
    faults: FaultPlan
    ca_cert: Path | None
    _extra: dict[str, Any] = field(default_factory=dict)

    @property
    def servers(self) -> list[SandboxServer]:
        return [server for server in (self.salesforce, self.hubspot) if server is not None]

    # -- Salesforce ----------------------------------------------------------------------------------

    def salesforce_credentials(self) -> Any:
        """The SalesforceCredentials the served Salesforce accepts."""
        server = self._require("salesforce")
        return getattr(server.service, "credentials", None)

    def salesforce_domain(self) -> str:
        """What to pass as simple-salesforce's `domain` so its login URLs reach this sandbox."""
        server = self._require("salesforce")
        host = f"[{server.host}]" if ":" in server.host else server.host
        return f"{host}:{server.port}/{SALESFORCE_LOGIN_PREFIX}"

    def requests_session(self) -> requests.Session:
        """A requests session that trusts the sandbox CA (and, served over http, reaches it over http)."""
        session = requests.Session()
        session.trust_env = False  # loopback only: never through a proxy from the environment
        server = self._require("salesforce")
        if server.tls is not None:
            session.verify = str(server.tls.ca_cert)
        else:
            session.mount("https://" + server.base_url.split("://", 1)[1], HttpsToHttpAdapter())
        return session

    def salesforce_client(self, *, auth: str = "password", **kwargs: Any) -> simple_salesforce.Salesforce:
        """simple-salesforce logged in to the sandbox.

        auth: "password" (SOAP login with username, password, security token), "oauth_password"
        (OAuth username-password flow with the consumer key and secret) or "client_credentials".
        kwargs go to `Salesforce(...)` and win over the defaults (e.g. version=, password=).
        """
        from simple_salesforce import Salesforce

        credentials = self.salesforce_credentials()
        options: dict[str, Any] = {"session": self.requests_session(), "domain": self.salesforce_domain(),
                                   "version": SALESFORCE_API_VERSION}
        if auth == "password":
            options |= {"username": credentials.username, "password": credentials.password,
                        "security_token": credentials.security_token}
        elif auth == "oauth_password":
            options |= {"username": credentials.username, "password": credentials.password,
                        "consumer_key": credentials.consumer_key, "consumer_secret": credentials.consumer_secret}
        elif auth == "client_credentials":
            options |= {"consumer_key": credentials.consumer_key, "consumer_secret": credentials.consumer_secret}
        else:
            raise ValueError(f"salesforce_client: unknown auth {auth!r}: use password, oauth_password or "
                             f"client_credentials")
        return Salesforce(**(options | kwargs))

    # -- HubSpot -------------------------------------------------------------------------------------

    def hubspot_token(self) -> str:
        server = self._require("hubspot")
        return str(getattr(server.service, "token", ""))

    def hubspot_client(self, **kwargs: Any) -> hubspot.HubSpot:
        """hubspot-api-client pointed at the sandbox, trusting its CA; kwargs go to `HubSpot(...)`."""
        from hubspot import HubSpot

        server = self._require("hubspot")
        options: dict[str, Any] = {"access_token": self.hubspot_token(), "host": server.base_url}
        if server.tls is not None:
            options["ssl_ca_cert"] = str(server.tls.ca_cert)
        return HubSpot(**(options | kwargs))

    # -- the agent's configuration -------------------------------------------------------------------

    def config_snippet(self) -> str:
        """TOML for the agent's [connections.*] that points at this sandbox."""
        return connections_toml(self)

    def _require(self, service: str) -> SandboxServer:
        server = self.salesforce if service == "salesforce" else self.hubspot
        if server is None:
            raise RuntimeError(f"this sandbox serves {self.serve_as}, not {service}: "
                               f"start it with serve_as='{service}' or 'split'")
        return server


def _toml_string(value: object) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def connections_toml(sandbox: RunningSandbox) -> str:
    """The [connections.*] tables for a running sandbox (also printed by `kpi-agent sandbox`)."""
    lines: list[str] = []
    if sandbox.salesforce is not None:
        credentials = sandbox.salesforce_credentials()
        lines += ["[connections.salesforce]", 'kind = "salesforce"', 'auth = "password"',
                  f"instance_url = {_toml_string(sandbox.salesforce.base_url)}",
                  f"username = {_toml_string(credentials.username)}",
                  f"password = {_toml_string(credentials.password)}",
                  f"security_token = {_toml_string(credentials.security_token)}",
                  f"domain = {_toml_string(sandbox.salesforce_domain())}",
                  f"consumer_key = {_toml_string(credentials.consumer_key)}",
                  f"consumer_secret = {_toml_string(credentials.consumer_secret)}",
                  f"api_version = {_toml_string(SALESFORCE_API_VERSION)}"]
        if sandbox.salesforce.tls is not None:
            lines.append(f"ca_bundle = {_toml_string(sandbox.salesforce.tls.ca_cert)}")
        lines.append("")
    if sandbox.hubspot is not None:
        lines += ["[connections.hubspot]", 'kind = "hubspot"',
                  f"base_url = {_toml_string(sandbox.hubspot.base_url)}",
                  f"access_token = {_toml_string(sandbox.hubspot_token())}"]
        if sandbox.hubspot.tls is not None:  # only with hubspot_tls=True; the agent's config may not know it
            lines.append(f"ca_bundle = {_toml_string(sandbox.hubspot.tls.ca_cert)}")
        lines.append("")
    return "\n".join(lines)


def build_services(world: World, serve_as: str, limits_scale: float = 1.0) -> dict[str, Any]:
    """The service objects for `serve_as`: {"salesforce": ..., "hubspot": ...} (only those served)."""
    if serve_as not in SERVE_AS:
        raise ValueError(f"serve_as {serve_as!r}: use one of {', '.join(SERVE_AS)}")
    only_crm = serve_as == "split"
    services: dict[str, Any] = {}
    if serve_as in ("salesforce", "split"):
        from connectors.sandbox.salesforce import SalesforceService

        services["salesforce"] = SalesforceService(world, only_crm="salesforce" if only_crm else None,
                                                   limits_scale=limits_scale)
    if serve_as in ("hubspot", "split"):
        from connectors.sandbox.hubspot import HubSpotService

        services["hubspot"] = HubSpotService(world, only_crm="hubspot" if only_crm else None,
                                             limits_scale=limits_scale)
    return services


@contextmanager
def running_sandbox(world: World, *, serve_as: str = "salesforce", faults: str | FaultPlan | None = None,
                    tls_dir: Path | None = None, limits_scale: float = 1.0, tls: bool = True,
                    hubspot_tls: bool = False,
                    host: str = "127.0.0.1", ports: Mapping[str, int] | None = None,
                    services: Mapping[str, Any] | None = None) -> Iterator[RunningSandbox]:
    """The world served on loopback ports until the block ends.

    tls: serve Salesforce over https with the test CA from `tls_dir` (default: a per-user temp directory),
    as simple-salesforce requires; tls=False serves http and `salesforce_client()` downgrades its https
    URLs. HubSpot is served over http (its client takes any base URL) unless hubspot_tls=True.
    services: ready-made service objects by name (e.g. with other credentials) instead of the defaults.
    One FaultPlan and one RequestLog are shared by the servers.
    """
    plan = faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)
    request_log = RequestLog()
    tls_files: TLSFiles | None = ensure_test_ca(tls_dir or default_tls_dir()) if tls or hubspot_tls else None
    chosen = dict(services) if services is not None else build_services(world, serve_as, limits_scale)
    with ExitStack() as stack:
        servers: dict[str, SandboxServer] = {}
        for name, service in chosen.items():
            served_tls = tls if name == "salesforce" else hubspot_tls
            server = SandboxServer(service, host=host, port=(ports or {}).get(name, 0),
                                   tls=tls_files if served_tls else None, faults=plan, log=request_log)
            servers[name] = stack.enter_context(server)
        yield RunningSandbox(world, serve_as, servers.get("salesforce"), servers.get("hubspot"), request_log,
                             plan, tls_files.ca_cert if tls_files else None)
