"""Files only the hub's user may read: the data directory and the SQLite database.

They hold token hashes, plugin configs (with their secrets) and the
credentials master key. Modes are set explicitly, not left to the umask: a
directory the hub creates is 0700, a file 0600. SQLite gives its ``-wal``,
``-shm`` and ``-journal`` files the mode of the database file, so creating
that file 0600 before SQLite opens it makes them private too.

What already exists is tightened, with a warning naming the old mode: the
data directory is the hub's own (``UNITY_DATA_DIR``), and a database file
others can read is a leak to close rather than a choice to respect. A
directory the operator picked for a SQLite file outside the data directory is
left as it is; the files in it are still made private.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_dir", "private_sqlite_file", "tighten"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")

log = logging.getLogger(__name__)


def tighten(path: Path, mode: int) -> None:
    """Take group and other permissions off an existing ``path``; warn when it had any."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & 0o077:
        return
    try:
        path.chmod(mode)
    except OSError as exc:
        log.warning(
            "%s is mode %04o, open to other users, and could not be made %04o: %s",
            path,
            current,
            mode,
            exc,
        )
        return
    log.warning("%s was mode %04o, open to other users; it is now %04o", path, current, mode)


def private_dir(path: Path) -> Path:
    """``path`` as a directory, created with mode 0700 when missing (whatever the umask)."""
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        # mkdir's mode is filtered through the umask.
        path.chmod(PRIVATE_DIR)
    return path


def private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does, and tighten what exists."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        try:
            os.fchmod(fd, PRIVATE_FILE)
        finally:
            os.close(fd)
    for candidate in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        tighten(candidate, PRIVATE_FILE)
