"""Shared fixtures for the sandbox tests: loopback only, one test CA per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.sandbox.tls import TLSFiles, ensure_test_ca

# The HTTP clients honour proxy variables; the sandbox is on loopback and must be reached directly.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"


@pytest.fixture(scope="session")
def sandbox_tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the session's test CA (made once: key generation is not free)."""
    directory = tmp_path_factory.mktemp("sandbox-tls")
    ensure_test_ca(directory)
    return directory


@pytest.fixture(scope="session")
def sandbox_tls(sandbox_tls_dir: Path) -> TLSFiles:
    return ensure_test_ca(sandbox_tls_dir)
