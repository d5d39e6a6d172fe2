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
        when = datetime.fromisoformat(stamp)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursorError("cursor is not valid") from exc
    # Only what encode_cursor produces: an aware time and a 64-bit row id.
    if when.tzinfo is None or not isinstance(row_id, int) or not 0 <= row_id < 2**63:
        raise InvalidCursorError("cursor is not valid")
    return when, row_id
