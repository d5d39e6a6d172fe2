"""Opaque cursors for keyset pagination over (timestamp, id)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

__all__ = ["InvalidCursorError", "decode_cursor", "encode_cursor"]


class InvalidCursorError(ValueError):
    """The cursor was not produced by this hub."""


def encode_cursor(timestamp: datetime, row_id: int) -> str:
    raw = json.dumps([timestamp.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        return datetime.fromisoformat(stamp), int(row_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursorError("cursor is not valid") from exc
