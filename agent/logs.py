"""Logging set-up, with every configured secret masked wherever it would appear.

Config secrets are ``SecretStr`` and never formatted on purpose; the redacting filter is the second line
of defence for a secret that reaches a message another way (an exception text from a client library that
echoes a URL or a header, say).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pydantic import BaseModel, SecretStr
from rich.console import Console
from rich.logging import RichHandler

MASK = "***"


class SecretRedactor(logging.Filter):
    """Replace each known secret in a record's message and arguments by ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole; very short values would
        # mask ordinary words, and are not credible secrets anyway.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def secrets_of(model: BaseModel) -> list[str]:
    """Every ``SecretStr`` value held anywhere inside a pydantic model."""
    found: list[str] = []
    _collect(model, found)
    return found


def _collect(value: object, found: list[str]) -> None:
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect(getattr(value, name), found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Rich console logging for the CLI, with secret redaction on the handler."""
    # Logs go to stderr, so that a command's own output (JSON, tables) on stdout stays clean.
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
    handler.addFilter(SecretRedactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, RichHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic narrates every migration step at INFO; an admin needs to hear only of problems.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("apscheduler.scheduler").setLevel(max(logging.WARNING, root.level))
