"""Typed errors of notifications; none carries a channel's URL or its tokens.

Exception hierarchy::

    NotifyError
    ├── ChannelNotFoundError   no channel with that name
    ├── ChannelExistsError     the name is taken
    ├── InvalidChannelError    input that cannot be used (names the field)
    └── DeliveryError          a channel refused, failed or timed out (text scrubbed)
"""

from __future__ import annotations

__all__ = [
    "ChannelExistsError",
    "ChannelNotFoundError",
    "DeliveryError",
    "InvalidChannelError",
    "NotifyError",
]


class NotifyError(Exception):
    """Base class of every error of the notifications package."""


class ChannelNotFoundError(NotifyError, LookupError):
    """No channel with that name."""


class ChannelExistsError(NotifyError):
    """A channel with that name already exists."""


class InvalidChannelError(NotifyError, ValueError):
    """The input cannot be used; ``field`` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class DeliveryError(NotifyError):
    """A delivery failed; the message is already scrubbed of the channel's secrets."""
