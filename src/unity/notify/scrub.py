"""Keeping a channel's URL and tokens out of logs, errors and the delivery log.

A channel URL carries its secrets anywhere: the user info, the host (a
Telegram bot token, a Discord webhook id), path segments, query values.
:func:`secret_parts` takes every such part; :func:`scrub` replaces them in a
text. Apprise and the HTTP library under it log request URLs; the
:class:`SecretFilter` installed on their loggers rewrites each record with
the parts of every URL the hub has opened, and their levels are raised to
WARNING unless the operator chose one (as :mod:`unity.storage.db` does for
the database driver).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "MASK",
    "hidden",
    "install_log_filter",
    "masked",
    "remember",
    "scrub",
    "secret_parts",
]

MASK = "[redacted]"
# Shorter parts (a port, "v1", "api") are not secrets and would blank out ordinary words.
_MIN_PART = 4
_NOISY_LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.util.retry", "requests")


def secret_parts(url: str) -> set[str]:
    """The URL and each of its parts that may hold a secret, raw and unquoted."""
    parts = {url, url.split("://", 1)[-1]}
    try:
        split = urlsplit(url)
        pieces = [split.netloc, split.username or "", split.password or "", split.hostname or ""]
        pieces += split.path.split("/")
        pieces += [value for _, value in parse_qsl(split.query, keep_blank_values=True)]
        pieces += [split.query, split.fragment]
    except ValueError:
        pieces = re.split(r"[/:@?&=#]", url)
    parts.update(pieces)
    parts.update(unquote(p) for p in list(parts))
    return {p for p in parts if len(p) >= _MIN_PART}


def scrub(text: str, parts: Iterable[str]) -> str:
    """``text`` with every part replaced by :data:`MASK`, longest first."""
    for part in sorted(set(parts), key=len, reverse=True):
        if part in text:
            text = text.replace(part, MASK)
    return text


def masked(url: str) -> str:
    """What may be shown of a channel URL: its scheme only (``ntfy://…``)."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme):
        return "…"
    return f"{scheme.lower()}://…"


class _Registry:
    """Secret parts of the URLs in use, counted so a temporary one can be dropped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: Counter[str] = Counter()

    def add(self, parts: Iterable[str]) -> None:
        with self._lock:
            self._parts.update(set(parts))

    def remove(self, parts: Iterable[str]) -> None:
        with self._lock:
            self._parts.subtract(set(parts))
            self._parts += Counter()  # drops the parts no longer counted

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self._parts)


_registry = _Registry()


def remember(url: str) -> set[str]:
    """Hide ``url``'s parts from the filtered loggers from now on; return them."""
    parts = secret_parts(url)
    _registry.add(parts)
    return parts


@contextmanager
def hidden(url: str) -> Iterator[set[str]]:
    """Hide ``url``'s parts from the filtered loggers while the block runs."""
    parts = secret_parts(url)
    _registry.add(parts)
    try:
        yield parts
    finally:
        _registry.remove(parts)


class SecretFilter(logging.Filter):
    """Rewrites a record's message with the known secret parts masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        parts = _registry.snapshot()
        if not parts:
            return True
        message = record.getMessage()
        cleaned = scrub(message, parts)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_installed = False


def install_log_filter() -> None:
    """Filter the loggers of Apprise and its HTTP library (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    secret_filter = SecretFilter()
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        logger.addFilter(secret_filter)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
