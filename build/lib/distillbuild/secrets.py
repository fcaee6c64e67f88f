"""Recognising secrets, so that none is ever echoed into a message, a log or a file."""

from __future__ import annotations

import re

SECRET_KEY_NAMES = re.compile(r"^(api[_-]?key|apikey|key|token|secret|password|access[_-]?token|bearer)$", re.I)
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,}|AIza[0-9A-Za-z_\-]{30,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,})$"
)


def looks_like_secret(value: object) -> bool:
    return isinstance(value, str) and bool(_SECRET_VALUE.match(value.strip()))


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every given secret replaced, for messages that quote a server's reply."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
