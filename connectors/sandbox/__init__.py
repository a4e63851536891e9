"""The CRM sandbox: loopback Salesforce and HubSpot that the real clients talk to, with faults on demand.

- `http`: the request/response values and the `SandboxService` protocol a CRM service implements;
- `server`: `SandboxServer` (one service, one port, TLS, keep-alive, faults) and the `RequestLog`;
- `faults`: `Fault`, `FaultPlan` and the spec grammar (FAULTS.md);
- `tls`: the test certificate authority;
- `world`: the world store (SQLite), the generator and the JSON Lines format (docs/sandbox-world.md);
- `salesforce`, `hubspot`: the services; `testing`: helpers for tests; `runner`: `kpi-agent sandbox`.
"""

from __future__ import annotations

from connectors.sandbox.faults import Fault, FaultPlan, FaultSpecError
from connectors.sandbox.http import SandboxRequest, SandboxResponse, SandboxService
from connectors.sandbox.server import LoggedRequest, RequestLog, SandboxServer
from connectors.sandbox.tls import TLSFiles, ensure_test_ca

__all__ = [
    "Fault", "FaultPlan", "FaultSpecError", "LoggedRequest", "RequestLog", "SandboxRequest",
    "SandboxResponse", "SandboxServer", "SandboxService", "TLSFiles", "ensure_test_ca",
]
