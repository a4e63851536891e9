"""What the HubSpot connector raises: each error names the connection, the object and what to do."""

from __future__ import annotations


class HubSpotError(Exception):
    """A HubSpot call failed in a way the connector cannot work around."""


class HubSpotRequestRefused(HubSpotError):
    """HubSpot answered 4xx (bad token, missing scope, bad request): retrying would not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class HubSpotUnavailable(HubSpotError):
    """HubSpot kept failing (5xx, 429, dropped connections) after every retry the policy allows."""


class HubSpotStopped(HubSpotError):
    """The object was stopped on purpose, between pages: the cursor of the last page is kept, and the
    next run carries on from it.  Not a failure of the data."""


class DailyLimitReached(HubSpotStopped):
    """HubSpot answered 429 with policy DAILY: the portal's daily API budget is spent until midnight."""


class ApiBudgetSpent(HubSpotStopped):
    """The portal's daily budget used has reached the connection's ``api_budget_share``."""


class HubSpotConfigError(HubSpotError):
    """The connection's configuration names something HubSpot does not have (a pipeline, a property)."""
