"""The one error type of the agent's commands.

A :class:`CommandError` is something the person at the terminal (or systemd)
must act on: a wrong token, a hub that is down, a changed certificate. The
command line prints its message as one line on stderr and exits 1; nothing
else of it is shown, so the message must say what happened and what to do.
"""

from __future__ import annotations

__all__ = ["CommandError"]


class CommandError(Exception):
    """A problem the user must fix, with the one-line message that says how."""
