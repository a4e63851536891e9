"""The sandbox world: its store (SQLite), the deterministic generator and the JSON Lines format."""

from __future__ import annotations

from connectors.sandbox.world.store import World, WorldError

__all__ = ["World", "WorldError"]
