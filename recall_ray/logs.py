"""Structured JSON logs with the request id, and PII masking for everything that is logged.

User ids are replaced by a short keyed hash (stable, so one user's lines can still be followed); e-mail
addresses, bearer tokens and signatures are redacted wherever they appear in a message.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import sys
import time

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SIGNATURE = re.compile(
    r"(?i)((?:signature|secret|password|token|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)[^\s,\"'&]+"
)
_USER = re.compile(r"\b(user:)([A-Za-z0-9_.:@-]+)")


def mask_user(user_id: str | None) -> str:
    if not user_id:
        return "-"
    return "u#" + hashlib.sha256(("recall-log:" + user_id).encode()).hexdigest()[:10]


def scrub(text: str) -> str:
    text = _JWT.sub("[jwt]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    text = _SIGNATURE.sub(r"\1[redacted]", text)
    text = _USER.sub(lambda m: m.group(1) + mask_user(m.group(2)), text)
    return _EMAIL.sub("[email]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any ``extra`` fields."""

    RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in self.RESERVED and key not in out:
                out[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners and daemons swap it)."""

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (the front, the CLI); calling it again changes nothing."""
    root = logging.getLogger()
    if any(isinstance(h, _Stderr) for h in root.handlers):
        return
    handler = _Stderr()
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level)
