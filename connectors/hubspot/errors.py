"""What the HubSpot connector raises: each error names the connection, the object and what to do.

Stops (:class:`DailyLimitReached`, :class:`ApiBudgetSpent`) are the engine's ``SyncStopped``: the object
ends cleanly with the cursor of its last committed page, and the next run carries on from there.
"""

from __future__ import annotations

from agent.sync.retry import BudgetExhausted


class HubSpotError(Exception):
    """A HubSpot call failed in a way the connector cannot work around."""


class HubSpotRequestRefused(HubSpotError):
    """HubSpot answered 4xx (bad token, missing scope, bad request): retrying would not help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class HubSpotUnavailable(HubSpotError):
    """HubSpot kept failing (5xx, 429, dropped connections) after every retry the policy allows."""


class HubSpotConfigError(HubSpotError):
    """The connection's configuration names something HubSpot does not have (a pipeline)."""


class DailyLimitReached(BudgetExhausted):
    """HubSpot answered 429 with policy DAILY: the portal's daily API budget is spent until midnight."""


class ApiBudgetSpent(BudgetExhausted):
    """The share of the portal's daily budget already used has reached the connection's ``api_budget_share``."""
