"""Sync: the connector contract, normalized records, and the engine that writes them to the cache."""
