"""``Store`` on SQLAlchemy Core: SQLite (the stdlib driver) and PostgreSQL (asyncpg).

Each store call is one function over a synchronous ``Connection`` run as one transaction.
On SQLite it runs on one dedicated thread, so a call costs one hop between threads instead
of one per statement and the event loop never waits for SQLite's file lock. On PostgreSQL
it runs through SQLAlchemy's asyncio bridge, except the hot paths: each of those is one
statement, sent straight to asyncpg as one round trip (see ``PostgresRunner``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import asyncpg
from sqlalchemy import (
    Boolean,
    Connection,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    literal,
    make_url,
    not_,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import Float, String, Text

from pairflow.store import (
    Account,
    AuditEvent,
    Client,
    Conflict,
    DeviceGrant,
    NewRefreshToken,
    Organisation,
    PairedDevice,
    RefreshToken,
    StoreUnavailable,
    User,
)
from pairflow.store.tables import (
    audit_events,
    clients,
    device_grants,
    organisations,
    refresh_tokens,
    server_secrets,
    users,
)

R = TypeVar("R")
SLOW_DOWN_STEP = 5  # seconds added to a code's interval per early poll (RFC 8628 section 3.5)
# A poll this much early still counts as on time: network jitter must not punish a client
# that sends at a steady interval.
POLL_LEEWAY = 0.5
CLIENT_CACHE_SECONDS = 5.0  # a deleted client may keep working this long in other processes


def _param(name: str, type_: Any = None) -> Any:
    # Prefixed: SQLAlchemy reserves bare column names for the SET clause.
    return bindparam(f"p_{name}", type_=type_)


def _build_poll_statement() -> Any:
    """The poll's one UPDATE, built once: hot-path calls only bind values."""
    g = device_grants.c
    now = _param("now")
    alive = g.expires_at > now
    on_time = or_(g.last_polled_at.is_(None), g.last_polled_at + g.interval <= now + POLL_LEEWAY)
    redeemable = and_(g.state == "approved", alive)
    accepted_pending = and_(g.state == "pending", alive, on_time)
    too_early = and_(g.state == "pending", alive, not_(on_time))
    return (
        update(device_grants)
        .where(g.code_hash == _param("code_hash"), g.kind == _param("kind"), g.client_id == _param("client_id"))
        .values(
            state=case((redeemable, "redeemed"), else_=g.state),
            redeemed_at=case((redeemable, now), else_=g.redeemed_at),
            token_jti=case((redeemable, _param("jti")), (accepted_pending, _param("jti")), else_=g.token_jti),
            interval=case((too_early, g.interval + SLOW_DOWN_STEP), else_=g.interval),
            last_polled_at=case((on_time, now), else_=g.last_polled_at),
        )
        .returning(*device_grants.c)
    )


def _build_rotate_statement() -> Any:
    r = refresh_tokens.c
    return (
        update(refresh_tokens)
        .where(
            r.token_hash == _param("token_hash"),
            r.client_id == _param("client_id"),
            r.used_at.is_(None),
            r.revoked.is_(False),
            r.expires_at > _param("now"),
        )
        .values(used_at=_param("now"))
        .returning(*refresh_tokens.c)
    )


def _with_new_refresh_token(spending: Any, family_id: Any, scope: Any, condition: Any = None) -> Any:
    """``spending`` (an UPDATE … RETURNING) and, for the row it returns, a new refresh token, as one
    statement (PostgreSQL's data-modifying CTE): one round trip, and atomic without a transaction."""
    spent = spending.cte("spent")
    s = spent.c
    made = select(_param("new_token_hash", String), family_id(s), s.client_id, s.user_id, s.org_id, scope(s),
                  _param("now", Float), _param("new_token_expires_at", Float), null(), false())
    if condition is not None:
        made = made.where(condition(s))
    columns = ["token_hash", "family_id", "client_id", "user_id", "org_id", "scope", "created_at", "expires_at", "used_at", "revoked"]
    return select(spent).add_cte(insert(refresh_tokens).from_select(columns, made).cte("made"))


POLL_GRANT = _build_poll_statement()
ROTATE_REFRESH_TOKEN = _build_rotate_statement()
# PostgreSQL: the poll that redeems stores the first refresh token of the session it names.
POLL_GRANT_ISSUING = _with_new_refresh_token(
    POLL_GRANT, family_id=lambda g: _param("jti", String), scope=lambda g: g.scope,
    condition=lambda g: and_(g.state == "redeemed", g.token_jti == _param("jti", String)),
)
# PostgreSQL: the spent token's successor, in the same family, with the narrowed scope if one is given.
ROTATE_REFRESH_TOKEN_SUCCEEDING = _with_new_refresh_token(
    ROTATE_REFRESH_TOKEN, family_id=lambda r: r.family_id, scope=lambda r: func.coalesce(_param("scope", Text), r.scope),
)
SELECT_GRANT = select(device_grants).where(device_grants.c.code_hash == _param("code_hash"))
SELECT_CLIENT = select(clients).where(clients.c.client_id == _param("client_id"))
# A session is live while its family holds an unrevoked token (deleting the user or the
# client deletes the family, so their access tokens stop working too).
SELECT_ACCOUNT = (
    select(users.c.id.label("user_id"), users.c.email, users.c.org_id, organisations.c.name.label("org_name"))
    .join(organisations, organisations.c.id == users.c.org_id)
    .where(
        users.c.id == _param("user_id"),
        select(refresh_tokens.c.token_hash)
        .where(refresh_tokens.c.family_id == _param("session_id"), refresh_tokens.c.revoked.is_(False))
        .exists(),
    )
)


class Prepared:
    """A Core statement compiled once for one dialect and run straight on the DBAPI cursor.

    For the one-row statements on the hot paths, SQLAlchemy's per-execution work (execution
    context, result metadata, type processing) costs several times what the database does;
    the statement stays defined in Core and only its execution skips that layer.
    """

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        # Per position: the caller's parameter name, or the constant that Core bound itself.
        fixed = compiled.params
        self._positions = [(name, compiled.binds[name].required, fixed[name]) for name in compiled.positiontup or ()]
        self._columns = [column.key for column in statement.exported_columns]
        self._booleans = [isinstance(column.type, Boolean) for column in statement.exported_columns]
        self._errors = dialect.loaded_dbapi.Error

    def values(self, params: dict[str, Any]) -> list[Any]:
        """The positional parameters, from ``params`` keyed by bind name (``p_…``)."""
        return [params[name] if required else constant for name, required, constant in self._positions]

    def row(self, values: Any) -> dict[str, Any]:
        """A returned row by column name, booleans as ``bool`` (SQLite returns 0 and 1)."""
        return {
            name: bool(value) if boolean and value is not None else value
            for name, boolean, value in zip(self._columns, self._booleans, values, strict=True)
        }

    def execute(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        """Run the statement on ``conn``; its first row (if it returns rows) by column name."""
        values = self.values(params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, values)
            rows = cursor.fetchall() if self._columns else []
        except self._errors as exc:  # the same wrapped errors that Connection.execute raises
            raise DBAPIError.instance(self.sql, values, exc, self._errors) from exc
        finally:
            cursor.close()
        return self.row(rows[0]) if rows else None


class Runner(Protocol):
    dialect: Any

    async def run(self, work: Callable[[Connection], R]) -> R:
        """Run ``work`` in one transaction and return its result."""

    async def execute(self, statement: Prepared, params: dict[str, Any]) -> dict[str, Any] | None:
        """Run one statement as its own transaction; its first row, if any."""

    async def close(self) -> None: ...


_Job = tuple[Callable[[Connection], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class SqliteRunner:
    """One connection on one thread, with group commit.

    Calls made during one turn of an event loop are handed to the thread together, at the
    start of the loop's next turn; calls that queue up while the thread is busy join them.
    The thread runs each batch in one transaction, every call inside its own SAVEPOINT (a
    failing call undoes only itself), commits once and wakes each loop once. Under load one
    commit serves dozens of requests, and the event loop never waits for SQLite's file lock.
    A call's result is delivered only after its transaction has committed.

    Batching by turn matters because the thread takes whatever is queued the moment it
    wakes: fed call by call, it would often start a transaction with a turn's first call
    and leave the rest for another commit. One hand-over per turn is also one queue
    operation and one wake-up instead of one per call.
    """

    MAX_BATCH = 256

    def __init__(self, url: str) -> None:
        # AUTOCOMMIT: the thread issues BEGIN, SAVEPOINT and COMMIT itself.
        self.engine = create_engine(make_url(url).set(drivername="sqlite"), poolclass=NullPool,
                                    isolation_level="AUTOCOMMIT", connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(self.engine, "connect", _configure_sqlite)
        self.dialect = self.engine.dialect
        self._jobs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        # Per event loop: the calls made during its current turn (touched only by that loop's thread).
        self._turns: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        self._thread = threading.Thread(target=self._serve, name="pairflow-sqlite", daemon=True)
        self._thread.start()

    async def run(self, work: Callable[[Connection], R]) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = []
            loop.call_soon(self._hand_over, loop)
        turn.append((work, future, loop))
        return await future

    async def execute(self, statement: Prepared, params: dict[str, Any]) -> dict[str, Any] | None:
        return await self.run(lambda conn: statement.execute(conn, params))

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._jobs.put(self._turns.pop(loop))

    async def close(self) -> None:
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)

    def _serve(self) -> None:
        conn: Connection | None = None
        running = True
        while running:
            batch = self._jobs.get()
            if batch is None:
                break
            while len(batch) < self.MAX_BATCH:  # turns that queued up while the last batch ran
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    running = False
                    break
                batch += more
            try:
                conn = conn or self.engine.connect()
                outcomes = self._transaction(conn, [work for work, _, _ in batch])
            except Exception as exc:  # BEGIN or COMMIT failed (lock timeout, disk): nothing of the batch stands
                if conn is not None:
                    conn.close()
                    conn = None
                outcomes = [(False, exc)] * len(batch)
            _deliver(batch, outcomes)
        if conn is not None:
            conn.close()
        self.engine.dispose()

    @staticmethod
    def _transaction(conn: Connection, works: list[Callable[[Connection], Any]]) -> list[tuple[bool, Any]]:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        outcomes: list[tuple[bool, Any]] = []
        # SQLAlchemy's transaction sends nothing under AUTOCOMMIT, but it tells the works
        # (Alembic among them) that one is open, so they leave committing to us. On an
        # error it rolls the database back.
        with conn.begin():
            # IMMEDIATE takes the write lock up front: waiting for it honours busy_timeout,
            # where upgrading a read transaction later could fail at once.
            raw.execute("BEGIN IMMEDIATE")
            for work in works:
                raw.execute("SAVEPOINT call")
                try:
                    outcomes.append((True, work(conn)))
                except Exception as exc:
                    raw.execute("ROLLBACK TO call")
                    outcomes.append((False, exc))
                raw.execute("RELEASE call")
            raw.execute("COMMIT")
        return outcomes


def _deliver(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each result to its caller's event loop, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for (_, future, loop), (ok, value) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, ok, value))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:  # that loop has closed: nobody is waiting any more
            pass


def _settle(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.done():  # the caller was cancelled (its client went away)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class PostgresRunner:
    """Transactions through SQLAlchemy; single hot statements straight on an asyncpg pool.

    Through SQLAlchemy a one-statement call costs three round trips (BEGIN, the statement,
    COMMIT) and SQLAlchemy's per-execution work. The hot paths (poll, token issue, refresh,
    pairing, client and session look-ups) are each one statement, so they run on a pool of
    their own as one round trip in autocommit, with asyncpg's cached prepared statements.
    That pool skips asyncpg's reset on release (another round trip): its connections only
    ever run these statements, which leave no session state behind.
    """

    POOL_SIZE = 10

    def __init__(self, url: str) -> None:
        # Bounded waits: a database that stops answering (network partition) must give 503s, not hung requests.
        # No pre-ping (a round trip per transaction): a dead connection fails one request with a 503 and
        # SQLAlchemy then replaces the whole pool.
        self._timeouts = {"timeout": 5, "command_timeout": 10}
        self.engine = create_async_engine(url, pool_size=5, max_overflow=10, connect_args=self._timeouts)
        self.dialect = self.engine.dialect
        self._pool: asyncpg.Pool | None = None
        self._pool_opening: asyncio.Future[asyncpg.Pool] | None = None

    async def run(self, work: Callable[[Connection], R]) -> R:
        async with self.engine.begin() as conn:
            return await conn.run_sync(work)

    async def execute(self, statement: Prepared, params: dict[str, Any]) -> dict[str, Any] | None:
        pool = self._pool or await asyncio.shield(self._opening_pool())
        record = await pool.fetchrow(statement.sql, *statement.values(params))
        return statement.row(record) if record is not None else None

    def _opening_pool(self) -> asyncio.Future[asyncpg.Pool]:
        """One attempt to open the pool, shared by every request that needs it meanwhile: while
        the database is unreachable they all fail together when it times out, not one after another."""
        opening = self._pool_opening
        if opening is None or (opening.done() and (opening.cancelled() or opening.exception() is not None)):
            opening = self._pool_opening = asyncio.ensure_future(self._open_pool())
            opening.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen even if all callers left
        return opening

    async def _open_pool(self) -> asyncpg.Pool:
        args, kwargs = self.dialect.create_connect_args(self.engine.url)
        options = {**self._timeouts, **kwargs}  # options in the URL win
        # SQLAlchemy's names for what asyncpg calls its own: 0 turns the statement cache off (PgBouncer).
        cache_size = options.pop("prepared_statement_cache_size", None)
        if cache_size is not None:
            options["statement_cache_size"] = cache_size
        for sqlalchemy_only in ("prepared_statement_name_func", "async_creator_fn"):
            options.pop(sqlalchemy_only, None)
        self._pool = await asyncpg.create_pool(*args, **options, min_size=1, max_size=self.POOL_SIZE, reset=_keep_session)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        elif self._pool_opening is not None and not self._pool_opening.done():
            self._pool_opening.cancel()
        await self.engine.dispose()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: the hot-path pool's connections run only self-contained statements."""


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets several server processes read while one writes; busy_timeout makes
    # writers queue instead of failing with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _row(model: type[R], row: Any) -> R:
    return model(**row._mapping)


def _values(record: Any) -> dict[str, Any]:
    """A stored dataclass's fields by name; all are plain values, so ``asdict``'s deep copy is not needed."""
    return dict(vars(record))


def _refresh_row(
    token: NewRefreshToken, family_id: str, origin: DeviceGrant | RefreshToken, now: float, scope: str | None = None
) -> dict[str, Any]:
    return {
        "token_hash": token.token_hash,
        "family_id": family_id,
        "client_id": origin.client_id,
        "user_id": origin.user_id,
        "org_id": origin.org_id,
        "scope": scope or origin.scope,
        "created_at": now,
        "expires_at": token.expires_at,
        "used_at": None,
        "revoked": False,
    }


READ_ONLY = "25006"  # SQLSTATE read_only_sql_transaction: a standby, e.g. mid-failover


async def _translated(call: Awaitable[R]) -> R:
    """``call``'s result, with database failures as store errors (from SQLAlchemy and from asyncpg)."""
    try:
        return await call
    except (IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise Conflict(str(getattr(exc, "orig", exc))) from exc
    except (OperationalError, InterfaceError, OSError, ConnectionError, TimeoutError, PoolTimeout,
            asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.exceptions.OperatorInterventionError,
            asyncpg.exceptions.InsufficientResourcesError, asyncpg.ReadOnlySQLTransactionError) as exc:
        raise StoreUnavailable(str(exc)) from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or getattr(exc.orig, "pgcode", None) == READ_ONLY:
            raise StoreUnavailable(str(exc)) from exc
        raise


class SqlStore:
    def __init__(self, url: str) -> None:
        self._runner: Runner = SqliteRunner(url) if url.startswith("sqlite") else PostgresRunner(url)
        dialect = self._runner.dialect
        self.dialect: str = dialect.name
        # PostgreSQL makes a call's two writes one statement; SQLite has no data-modifying CTEs,
        # so there they are two statements in one transaction.
        self._issues_in_one_statement = dialect.name == "postgresql"
        if self._issues_in_one_statement:
            self._poll_grant = Prepared(POLL_GRANT_ISSUING, dialect)
            self._rotate_refresh_token = Prepared(ROTATE_REFRESH_TOKEN_SUCCEEDING, dialect)
        else:
            self._poll_grant = Prepared(POLL_GRANT, dialect)
            self._rotate_refresh_token = Prepared(ROTATE_REFRESH_TOKEN, dialect)
        self._insert_refresh_token = Prepared(insert(refresh_tokens), dialect)
        self._select_client = Prepared(SELECT_CLIENT, dialect)
        self._select_one = Prepared(select(literal(1).label("one")), dialect)
        self._insert_grant = Prepared(insert(device_grants), dialect)
        self._select_grant = Prepared(SELECT_GRANT, dialect)
        self._select_account = Prepared(SELECT_ACCOUNT, dialect)
        # Every token request authenticates its client: a short-lived cache saves a query each time.
        self._clients: dict[str, tuple[float, Client | None]] = {}

    async def close(self) -> None:
        await self._runner.close()

    async def run(self, work: Callable[[Connection], R]) -> R:
        """Run ``work`` in one transaction, translating database failures into store errors."""
        return await _translated(self._runner.run(work))

    async def _execute(self, statement: Prepared, params: dict[str, Any]) -> dict[str, Any] | None:
        """One hot statement as its own transaction (one round trip on PostgreSQL)."""
        return await _translated(self._runner.execute(statement, params))

    async def _one(self, model: type[R], statement: Any, params: dict[str, Any] | None = None) -> R | None:
        row = await self.run(lambda conn: conn.execute(statement, params).first())
        return _row(model, row) if row is not None else None

    async def _all(self, model: type[R], statement: Any) -> list[R]:
        rows = await self.run(lambda conn: conn.execute(statement).all())
        return [_row(model, row) for row in rows]

    async def _count(self, statement: Any) -> int:
        return await self.run(lambda conn: conn.execute(statement).rowcount)

    async def _insert(self, table: Any, record: Any) -> None:
        await self.run(lambda conn: conn.execute(insert(table), _values(record)))

    async def ping(self) -> None:
        """The database answers hot statements and, on PostgreSQL (a pool of their own), transactions too."""
        await self._execute(self._select_one, {})
        if self.dialect == "postgresql":
            await self.run(lambda conn: conn.execute(select(1)))

    # Server secrets

    async def get_or_create_secret(self, name: str, make: Callable[[], str], now: float) -> str:
        query = select(server_secrets.c.value).where(server_secrets.c.name == name)
        value = await self.run(lambda conn: conn.execute(query).scalar())
        if value is not None:
            return value
        try:
            row = {"name": name, "value": make(), "created_at": now}
            await self.run(lambda conn: conn.execute(insert(server_secrets), row))
        except Conflict:
            pass  # another process created it first; everyone uses that one
        return await self.run(lambda conn: conn.execute(query).scalar_one())

    # Directory

    async def create_org(self, org: Organisation) -> None:
        await self._insert(organisations, org)

    async def get_org_by_name(self, name: str) -> Organisation | None:
        return await self._one(Organisation, select(organisations).where(organisations.c.name == name))

    async def list_orgs(self) -> list[Organisation]:
        return await self._all(Organisation, select(organisations).order_by(organisations.c.name))

    async def delete_org(self, org_id: str) -> bool:
        return await self._count(delete(organisations).where(organisations.c.id == org_id)) == 1

    async def create_user(self, user: User) -> None:
        await self._insert(users, user)

    async def get_user(self, user_id: str) -> User | None:
        return await self._one(User, select(users).where(users.c.id == user_id))

    async def get_user_by_email(self, email: str) -> User | None:
        return await self._one(User, select(users).where(users.c.email == email))

    async def list_users(self) -> list[User]:
        return await self._all(User, select(users).order_by(users.c.email))

    async def delete_user(self, user_id: str) -> bool:
        return await self._count(delete(users).where(users.c.id == user_id)) == 1

    async def create_client(self, client: Client) -> None:
        await self._insert(clients, client)

    async def get_client(self, client_id: str) -> Client | None:
        now = time.monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._execute(self._select_client, {"p_client_id": client_id})
        client = Client(**row) if row is not None else None
        if len(self._clients) > 10_000:  # bound memory under floods of made-up client ids
            self._clients.clear()
        self._clients[client_id] = (now + CLIENT_CACHE_SECONDS, client)
        return client

    async def list_clients(self) -> list[Client]:
        return await self._all(Client, select(clients).order_by(clients.c.name))

    async def delete_client(self, client_id: str) -> bool:
        self._clients.pop(client_id, None)
        return await self._count(delete(clients).where(clients.c.client_id == client_id)) == 1

    # Device grants

    async def create_grant(self, grant: DeviceGrant) -> None:
        await self._execute(self._insert_grant, _values(grant))

    async def find_grant(self, *, code_hash: str | None = None, user_code_hash: str | None = None) -> DeviceGrant | None:
        if code_hash:  # held token requests re-read by code
            row = await self._execute(self._select_grant, {"p_code_hash": code_hash})
            return DeviceGrant(**row) if row is not None else None
        return await self._one(DeviceGrant, select(device_grants).where(device_grants.c.user_code_hash == user_code_hash))

    async def decide_grant(self, code_hash: str, *, approve: bool, user_id: str, org_id: str, now: float) -> bool:
        g = device_grants.c
        statement = (
            update(device_grants)
            .where(g.code_hash == code_hash, g.state == "pending", g.expires_at > now)
            .values(state="approved" if approve else "denied", user_id=user_id, org_id=org_id, decided_at=now)
        )
        return await self._count(statement) == 1

    async def poll_grant(
        self, kind: str, code_hash: str, client_id: str, *, jti: str, now: float,
        first_refresh_token: Callable[[], NewRefreshToken],
    ) -> DeviceGrant | None:
        """Record one poll atomically, and redeem the grant if it is approved.

        In one UPDATE: an approved, unexpired grant becomes ``redeemed`` with ``token_jti``
        set to this caller's ``jti`` (so the caller knows it won); a poll on a pending grant
        that comes before ``last_polled_at + interval`` leaves ``last_polled_at`` alone and
        grows ``interval`` (slow_down); an on-time poll moves ``last_polled_at`` to ``now``
        and, on a pending grant, sets ``token_jti`` to this caller's ``jti`` (so the caller
        knows its poll was accepted, even when an earlier poll came at the same instant).
        The poll that redeems also stores ``first_refresh_token()`` as the first token of a
        new family named ``jti``, atomically. On SQLite it is called only by the poll that
        redeems; on PostgreSQL, where poll and insert are one statement, on every poll.
        Returns the row as it is after the update, or None when no such grant exists for
        this client.
        """
        params = {"p_code_hash": code_hash, "p_kind": kind, "p_client_id": client_id, "p_jti": jti, "p_now": now}
        if self._issues_in_one_statement:
            token = first_refresh_token()
            row = await self._execute(
                self._poll_grant, {**params, "p_new_token_hash": token.token_hash, "p_new_token_expires_at": token.expires_at}
            )
            return DeviceGrant(**row) if row is not None else None

        def work(conn: Connection) -> DeviceGrant | None:
            row = self._poll_grant.execute(conn, params)
            if row is None:
                return None
            grant = DeviceGrant(**row)
            if grant.state == "redeemed" and grant.token_jti == jti:
                self._insert_refresh_token.execute(conn, _refresh_row(first_refresh_token(), jti, grant, now))
            return grant

        return await self.run(work)

    # Refresh tokens

    async def rotate_refresh_token(
        self, token_hash: str, client_id: str, now: float, *, successor: NewRefreshToken, scope: str | None = None
    ) -> RefreshToken | None:
        """Spend a refresh token and store its successor (same family; ``scope`` if narrowed)
        in one transaction. Returns the spent token, or None if it was not usable."""
        params = {"p_token_hash": token_hash, "p_client_id": client_id, "p_now": now}
        if self._issues_in_one_statement:
            row = await self._execute(self._rotate_refresh_token, {
                **params, "p_new_token_hash": successor.token_hash, "p_new_token_expires_at": successor.expires_at,
                "p_scope": scope,
            })
            return RefreshToken(**row) if row is not None else None

        def work(conn: Connection) -> RefreshToken | None:
            row = self._rotate_refresh_token.execute(conn, params)
            if row is None:
                return None
            spent = RefreshToken(**row)
            self._insert_refresh_token.execute(conn, _refresh_row(successor, spent.family_id, spent, now, scope))
            return spent

        return await self.run(work)

    async def find_refresh_token(self, token_hash: str) -> RefreshToken | None:
        return await self._one(RefreshToken, select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash))

    async def revoke_family(self, family_id: str, user_id: str | None = None) -> int:
        """Revoke every token of the family; how many were live.

        The UPDATE is repeated, in the same transaction, until it changes nothing: on
        PostgreSQL a rotation that commits while it runs makes it wait (the spent token is
        locked) but adds a successor it cannot see; under read committed the next statement
        sees it. Revoked families cannot rotate, so this ends.
        """
        r = refresh_tokens.c
        statement = update(refresh_tokens).where(r.family_id == family_id, r.revoked.is_(False))
        if user_id is not None:
            statement = statement.where(r.user_id == user_id)
        statement = statement.values(revoked=True)

        def work(conn: Connection) -> int:
            revoked = 0
            while count := conn.execute(statement).rowcount:
                revoked += count
            return revoked

        return await self.run(work)

    async def get_account(self, user_id: str, session_id: str) -> Account | None:
        """The user and organisation, if the device session (refresh-token family) is still live."""
        params = {"p_user_id": user_id, "p_session_id": session_id}
        row = await self._execute(self._select_account, params)
        return Account(**row) if row is not None else None

    async def list_paired_devices(self, user_id: str, now: float) -> list[PairedDevice]:
        r = refresh_tokens.c
        statement = (
            select(
                r.family_id,
                clients.c.name.label("client_name"),
                r.scope,
                r.created_at.label("refreshed_at"),
                r.expires_at,
            )
            .join(clients, clients.c.client_id == r.client_id)
            .where(r.user_id == user_id, r.used_at.is_(None), r.revoked.is_(False), r.expires_at > now)
            .order_by(r.created_at.desc())
        )
        return await self._all(PairedDevice, statement)

    # Audit log

    async def record(self, event: AuditEvent) -> None:
        await self._insert(audit_events, event)

    async def list_events(self, limit: int) -> list[AuditEvent]:
        a = audit_events.c
        statement = select(a.at, a.event, a.detail, a.user_id, a.client_id, a.ip).order_by(a.id.desc()).limit(limit)
        return await self._all(AuditEvent, statement)
