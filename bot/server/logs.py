"""JSON log lines (one object per line) with the delivery id of the job that wrote them, and
every known secret redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bot.redact import redact

_DELIVERY: contextvars.ContextVar[str] = contextvars.ContextVar("promisebot_delivery", default="")


@contextmanager
def delivery_context(delivery: str) -> Iterator[None]:
    """Log lines written in this context (this thread or task only) carry `delivery`."""
    token = _DELIVERY.set(delivery)
    try:
        yield
    finally:
        _DELIVERY.reset(token)


class DeliveryFilter(logging.Filter):
    """Stamps each record with the delivery id of the job whose context wrote it."""

    def filter(self, record: logging.LogRecord) -> bool:
        delivery = _DELIVERY.get()
        if delivery:
            record.delivery = delivery
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self.secrets = list(secrets or [])

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)), "level": record.levelname,
               "logger": record.name, "message": redact(record.getMessage(), self.secrets)}
        delivery = getattr(record, "delivery", None)
        if delivery:
            out["delivery"] = delivery
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(out)


def setup_logging(secrets: list[str] | None = None, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(secrets))
    handler.addFilter(DeliveryFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
