"""The Salesforce sandbox: Salesforce's REST API, Bulk API 2.0 query jobs and logins over a sandbox world,
for simple-salesforce (and any other client) on loopback. See service.py for how a client connects."""

from __future__ import annotations

from connectors.sandbox.salesforce.auth import SalesforceCredentials, generate_jwt_key_pair
from connectors.sandbox.salesforce.service import SalesforceService

__all__ = ["SalesforceCredentials", "SalesforceService", "generate_jwt_key_pair"]
