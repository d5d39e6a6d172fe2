"""Opaque cursors for keyset pagination over (timestamp, id)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

__all__ = ["InvalidCursorError", "decode_cursor", "encode_cursor"]


class InvalidCursorError(ValueError):
    """The cursor was not produced by this hub."""

    def __init__(self, reason: str = "it was not issued by this hub") -> None:
        super().__init__(f"query parameter 'cursor' is not valid: {reason}")


def encode_cursor(timestamp: datetime, row_id: int) -> str:
    raw = json.dumps([timestamp.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursorError() from exc
    # Only what encode_cursor produces: an aware time and a 64-bit row id.
    if when.tzinfo is None or not isinstance(row_id, int) or not 0 <= row_id < 2**63:
        raise InvalidCursorError()
    try:
        # The database compares in UTC; a time that leaves years 1-9999 there is no cursor.
        return when.astimezone(UTC), row_id
    except OverflowError:
        raise InvalidCursorError("its time is outside years 1-9999 in UTC") from None
