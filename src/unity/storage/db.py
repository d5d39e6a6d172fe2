"""The database handle: engine, session factory, migrations, and outage tracking.

Alembic (with Mako) and asyncpg are imported only when needed: Alembic when a
migration is pending (whether one is comes from a one-row query and the
revision lines of the shipped migration files), asyncpg when the database is
PostgreSQL. An idle hub on SQLite with a current schema loads neither.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from unity.storage import jsoncodec
from unity.storage.private import private_sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

    from unity.storage.writer import GroupWriter

__all__ = [
    "Database",
    "DatabaseUnavailableError",
    "Outage",
    "alembic_config",
    "is_unavailable",
]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# The advisory lock hubs starting together on one PostgreSQL take to migrate one by one.
MIGRATION_LOCK = 0x756E697479  # "unity"
# SQLite errors that say "not now" rather than "this statement is wrong".
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "disk i/o error",
    "unable to open database file",
    "database or disk is full",
    "attempt to write a readonly database",
)
# PostgreSQL SQLSTATE classes of the same kind: connection exceptions,
# insufficient resources, operator intervention (shutdown, starting up).
_POSTGRES_UNAVAILABLE = ("08", "53", "57P")
# `revision = "0004"` / `down_revision: str | None = "0003"` in a migration file.
_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE
)


class DatabaseUnavailableError(ConnectionError):
    """The database could not be reached; the request may succeed once it is back.

    A ``ConnectionError`` (so an ``OSError``), as the bare connect failure it
    replaces was: code that handled that keeps working."""


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable or refusing work for now
    (as opposed to a bug or bad data), so the caller should retry later."""
    if isinstance(exc, DatabaseUnavailableError | sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_POSTGRES_UNAVAILABLE):
        return True
    message = str(exc.orig).lower()
    return isinstance(exc, sa_exc.OperationalError) and message.startswith(_SQLITE_UNAVAILABLE)


class Outage:
    """Whether the database is down, so an outage is logged once, not per failure."""

    def __init__(self) -> None:
        self.since: float | None = None

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        # No free pooled connection is back-pressure from this process, not an outage.
        if isinstance(exc, sa_exc.TimeoutError):
            return
        if self.since is None:
            self.since = time.monotonic()
            log.error("database unavailable, answering 503 until it is back: %s", _describe(exc))

    def recovered(self) -> None:
        if self.since is not None:
            log.info("database available again after %.1f s", time.monotonic() - self.since)
            self.since = None


def _describe(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc.__cause__ or exc
    return f"{type(cause).__name__}: {cause}".split("\n", 1)[0]


def _connect(dialect: Dialect, _record: Any, cargs: Any, cparams: Any) -> Any:
    # A refused or timed-out connect surfaces as a bare OSError; name it so the
    # API can tell "database down" from a bug.
    try:
        return dialect.connect(*cargs, **cparams)
    except _connect_errors(dialect) as exc:
        raise DatabaseUnavailableError(f"cannot connect to the database: {exc}") from exc


# aiosqlite logs every call at DEBUG with its SQL parameters: configs, secrets,
# token hashes. Like SQLAlchemy does for its own loggers, set a level unless
# the operator chose one, so UNITY_LOG_LEVEL=DEBUG never prints stored values.
_DRIVER_LOG = logging.getLogger("aiosqlite")
if _DRIVER_LOG.level == logging.NOTSET:
    _DRIVER_LOG.setLevel(logging.INFO)


def _connect_errors(dialect: Dialect) -> tuple[type[BaseException], ...]:
    if dialect.name != "postgresql":
        return (OSError, TimeoutError)
    import asyncpg

    return (
        OSError,
        TimeoutError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
    )


def alembic_config() -> Config:
    """An Alembic config pointing at the migrations shipped in the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: an acknowledged write survives a power loss, not only a crash of the hub.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """Owns the async engine; hands out sessions; applies migrations."""

    def __init__(self, url: str, *, echo: bool = False, connect_timeout: float = 10) -> None:
        self.url = make_url(url)
        self.outage = Outage()
        # Parameters stay out of log lines and error messages (they hold secrets).
        kwargs: dict[str, Any] = {
            "echo": echo,
            "hide_parameters": True,
            # JSON columns (and asyncpg's json/jsonb codecs) through orjson.
            "json_serializer": jsoncodec.dumps,
            "json_deserializer": jsoncodec.loads,
        }
        if self.is_sqlite:
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                private_sqlite_file(Path(database))
        else:
            kwargs.update(
                pool_size=10,
                max_overflow=20,
                # No ping before each checkout (a round trip on every transaction): a
                # connection that died with the server fails its first statement as
                # "invalidated", an outage (503), and the pool starts afresh.
                pool_timeout=connect_timeout,
                connect_args={"timeout": connect_timeout},
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        event.listen(self.engine.sync_engine, "do_connect", _connect)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._group_writer: GroupWriter | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session inside a transaction: committed on success, rolled back on error."""
        try:
            async with self.sessionmaker() as session, session.begin():
                yield session
        except Exception as exc:
            if is_unavailable(exc):
                self.outage.failed(exc)
            raise
        self.outage.recovered()

    async def ping(self) -> None:
        """One round trip; raises when the database does not answer."""
        async with self.session() as session:
            await session.execute(text("SELECT 1"))

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session for the hot write paths (runs, metric batches).

        SQLite has one writer at a time; left to its busy handler, waiting writers
        retry with growing sleeps and newcomers overtake them, so under load a
        few wait for seconds. On SQLite these writes queue first-come first-served
        in the process instead. Never open another session inside this one.
        """
        if self._write_lock is None:
            async with self.session() as session:
                yield session
            return
        async with self._write_lock, self.session() as session:
            yield session

    @property
    def group_writer(self) -> GroupWriter:
        """The group-commit writer of runs and metric batches (:mod:`unity.storage.writer`)."""
        if self._group_writer is None:
            from unity.storage.writer import GroupWriter

            self._group_writer = GroupWriter(self)
        return self._group_writer

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection inside a transaction (committed on success), for
        hot paths that run Core statements and need no ORM session."""
        try:
            async with self.engine.begin() as connection:
                yield connection
        except Exception as exc:
            if is_unavailable(exc):
                self.outage.failed(exc)
            raise
        self.outage.recovered()

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """:meth:`connection` queued like :meth:`writer` on SQLite."""
        if self._write_lock is None:
            async with self.connection() as connection:
                yield connection
            return
        async with self._write_lock, self.connection() as connection:
            yield connection

    async def upgrade(self, revision: str = "head") -> None:
        """Apply the shipped migrations up to ``revision``.

        When the database is already at the single shipped head, nothing else
        is done (and Alembic is not imported).
        """

        def run(connection: Connection) -> None:
            if revision == "head" and _at_head(connection):
                return
            from alembic import command

            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Held to the end of the transaction: the next hub finds the schema current.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            await conn.run_sync(run)

    async def dispose(self) -> None:
        """Write what the group writer still holds, then close every connection."""
        if self._group_writer is not None:
            await self._group_writer.close()
        await self.engine.dispose()


def shipped_head() -> str | None:
    """The one head revision of the shipped migrations; None when it is not clear-cut
    (several heads, or a file this reader does not understand): Alembic decides then."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text("utf-8")))
        if not found.get("revision") or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(connection: Connection) -> bool:
    """Whether the schema is at the shipped head, asked with one query."""
    head = shipped_head()
    if head is None or not connection.dialect.has_table(connection, "alembic_version"):
        return False
    stamped = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return list(stamped) == [head]
