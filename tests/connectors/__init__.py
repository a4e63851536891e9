"""Connector tests: every test talks to the CRM sandbox over real HTTP with the real client library."""
