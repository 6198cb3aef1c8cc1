"""The signal store: typed signal records, durable in SQLite with WAL.

One writer thread owns the write connection. Writers on any event loop hand it
an operation and await an asyncio future; the thread gathers concurrent
operations into one transaction (group commit) and resolves every future of a
batch with one ``call_soon_threadsafe`` per loop once the commit returned, so
an acknowledged write is in the WAL file before the caller resumes. sqlite3
releases the GIL while SQLite runs, so the loop keeps running during commits.
Reads run on a second thread with their own connection (WAL readers do not
wait for the writer).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future as _CFuture, ThreadPoolExecutor
from typing import Any

from .._errors import ConfigError, FerrotickError
from .._validate import boolean, integer, seconds

__all__ = [
    "Signal",
    "SignalManager",
    "initialize_async_signal_manager",
    "get_signal_manager",
]

DEFAULT_SIGNAL_TYPES = ("BUY", "SELL", "HOLD")
# "use default_ttl" (None means "never expires")
_DEFAULT: Any = object()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol TEXT NOT NULL,
    signal_type TEXT NOT NULL,
    value REAL NOT NULL,
    confidence REAL NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    metadata TEXT
);
CREATE INDEX IF NOT EXISTS signals_symbol_time ON signals (symbol, created_at);
CREATE INDEX IF NOT EXISTS signals_expiry ON signals (expires_at);
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = "id, symbol, signal_type, value, confidence, created_at, expires_at, metadata"
_INSERT = (
    "INSERT INTO signals (symbol, signal_type, value, confidence, created_at, expires_at, "
    "metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclasses.dataclass(slots=True)
class Signal:
    """One stored signal. Times are Unix seconds (UTC)."""

    id: int
    symbol: str
    signal_type: str
    value: float
    confidence: float
    created_at: float
    expires_at: float | None = None
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= time.time()


def _row(r: Sequence[Any]) -> Signal:
    return Signal(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]) if r[7] else None)


class _Op:
    """A write handed to the writer thread: ``kind`` is "create", "update", "batch",
    "delete_expired", "import" or "sync"; ``fut`` is resolved on ``loop``."""

    __slots__ = ("kind", "args", "loop", "fut", "t0")

    def __init__(self, kind: str, args: Any, loop: Any, fut: Any) -> None:
        self.kind = kind
        self.args = args
        self.loop = loop
        self.fut = fut
        self.t0 = time.perf_counter()


def _resolve(items: list[tuple[Any, bool, Any]]) -> None:
    for fut, ok, value in items:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


def _resolve_cf(fut: Any, ok: bool, value: Any) -> None:
    # a concurrent.futures.Future (blocking callers and import at open)
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


class SignalManager:
    """Signals in SQLite (WAL): create, update, read by symbol, time and type.

    ``path`` is the database file; a path ending in ``.json`` (the seed's
    ``persistence_file="signals.json"``) keeps the data in ``signals.json.sqlite3``,
    imports an existing ``signals.json`` once and writes it back on
    :meth:`export_json` and :meth:`close`.

    ``synchronous`` is SQLite's setting: "NORMAL" survives a killed process,
    "FULL" (the default) also a power loss. ``max_batch_delay`` bounds how long a
    write waits for concurrent writes to share its commit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "signals.sqlite3",
        *,
        auto_cleanup: bool = True,
        default_ttl: float | None = 3600.0,
        cleanup_interval: float = 60.0,
        synchronous: str = "FULL",
        max_batch_delay: float = 0.005,
        max_batch_size: int = 4096,
        signal_types: Iterable[str] | None = None,
        persistence_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if persistence_file is not None:
            path = persistence_file
        path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise ConfigError(f"path: expected a file name, got {path!r}")
        self.auto_cleanup = boolean("auto_cleanup", auto_cleanup)
        self.default_ttl = seconds("default_ttl", default_ttl, positive=True, allow_none=True)
        self.cleanup_interval = seconds("cleanup_interval", cleanup_interval, positive=True)
        self.max_batch_delay = seconds("max_batch_delay", max_batch_delay, max=1.0)
        self.max_batch_size = integer("max_batch_size", max_batch_size, min=1)
        sync = str(synchronous).upper() if isinstance(synchronous, str) else None
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigError(
                f"synchronous: expected 'OFF', 'NORMAL', 'FULL' or 'EXTRA', got {synchronous!r}"
            )
        self.synchronous = sync
        types = DEFAULT_SIGNAL_TYPES if signal_types is None else tuple(signal_types)
        for t in types:
            if not isinstance(t, str) or not t:
                raise ConfigError(f"signal_types: expected non-empty strings, got {t!r}")
        extra = () if signal_types is None else DEFAULT_SIGNAL_TYPES
        self.signal_types = frozenset(types) | frozenset(extra)
        if path.endswith(".json"):
            self.json_path: str | None = path
            self.db_path = path + ".sqlite3"
        else:
            self.json_path = None
            self.db_path = path
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._closed = False
        self._cleanup_task: asyncio.Task[None] | None = None
        self._stats = {
            "writes": 0,
            "commits": 0,
            "batch_max": 0,
            "errors": 0,
            "cleaned": 0,
            "last_commit_s": 0.0,
        }
        self._last_error: BaseException | None = None
        self._expected = 1
        # open the database on the writer thread and wait for it, so a bad path
        # or a locked file fails here with a clear message
        self._ready: Any = _CFuture()
        self._writer = threading.Thread(
            target=self._run_writer, name="ferrotick-signal-writer", daemon=True
        )
        self._writer.start()
        self._ready.result()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="ferrotick-signal-reader")
        self._local = threading.local()
        if self.json_path is not None:
            self._import_json_once()

    # -- writer thread -------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout=10000")
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={self.synchronous}")
        return con

    def _run_writer(self) -> None:
        try:
            con = self._connect()
            con.executescript(_SCHEMA)
        except BaseException as e:  # noqa: BLE001  (handed to the constructor)
            self._ready.set_exception(
                FerrotickError(f"signal store {self.db_path!r}: cannot open: {e}")
            )
            return
        self._ready.set_result(None)
        q = self._queue
        try:
            while True:
                first = q.get()
                if first is None:
                    break
                batch = [first]
                stop = self._gather(batch)
                self._commit(con, batch)
                if stop:
                    break
        finally:
            con.close()

    def _gather(self, batch: list[_Op | None]) -> bool:
        """Adds the operations waiting behind the first, and waits for more (up to
        ``max_batch_delay`` after the first arrived) while fewer have come than
        shared the previous commit: a lone writer commits at once, a steady crowd
        of writers shares one commit. True when the close marker was seen."""
        q = self._queue
        cap = self.max_batch_size
        while len(batch) < cap:
            try:
                op = q.get_nowait()
            except queue.Empty:
                break
            if op is None:
                return True
            batch.append(op)
        deadline = batch[0].t0 + self.max_batch_delay  # type: ignore[union-attr]
        while len(batch) < min(self._expected, cap):
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            try:
                op = q.get(timeout=left)
            except queue.Empty:
                break
            if op is None:
                return True
            batch.append(op)
        return False

    def _commit(self, con: sqlite3.Connection, batch: list[Any]) -> None:
        results: list[tuple[bool, Any]] = []
        t0 = time.perf_counter()
        try:
            con.execute("BEGIN IMMEDIATE")
            i = 0
            while i < len(batch):
                if batch[i].kind == "create":
                    # a run of creates: one executemany; their ids are consecutive
                    # because this connection holds the write lock until COMMIT
                    j = i
                    while j < len(batch) and batch[j].kind == "create":
                        j += 1
                    rows = [op.args for op in batch[i:j]]
                    con.executemany(_INSERT, rows)
                    last = con.execute("SELECT last_insert_rowid()").fetchone()[0]
                    first = last - len(rows) + 1
                    for k, a in enumerate(rows):
                        meta = json.loads(a[6]) if a[6] else None
                        results.append(
                            (True, Signal(first + k, a[0], a[1], a[2], a[3], a[4], a[5], meta))
                        )
                    i = j
                    continue
                op = batch[i]
                i += 1
                con.execute("SAVEPOINT op")
                try:
                    value = self._apply(con, op)
                except Exception as e:  # noqa: BLE001  (one bad operation fails alone)
                    con.execute("ROLLBACK TO op")
                    con.execute("RELEASE op")
                    results.append((False, e))
                else:
                    con.execute("RELEASE op")
                    results.append((True, value))
            con.execute("COMMIT")
        except Exception as e:  # noqa: BLE001  (the whole commit failed: disk full, I/O)
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            err = FerrotickError(f"signal store {self.db_path!r}: commit failed: {e}")
            self._last_error = err
            self._stats["errors"] += len(batch)
            results = [(False, err)] * len(batch)
        else:
            self._last_error = None
        dt = time.perf_counter() - t0
        st = self._stats
        st["commits"] += 1
        st["writes"] += len(batch)
        st["batch_max"] = max(st["batch_max"], len(batch))
        st["last_commit_s"] = dt
        self._expected = len(batch)
        # the first operation waited longest: its acknowledgement latency
        _observe(len(batch), dt, time.perf_counter() - batch[0].t0)
        by_loop: dict[Any, list[tuple[Any, bool, Any]]] = {}
        for op, (ok, value) in zip(batch, results, strict=True):
            if op.loop is None:
                _resolve_cf(op.fut, ok, value)
            else:
                by_loop.setdefault(op.loop, []).append((op.fut, ok, value))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items)
            except RuntimeError:
                pass  # that loop is closed: nobody waits for these any more

    def _apply(self, con: sqlite3.Connection, op: _Op) -> Any:
        kind = op.kind
        if kind == "create":
            return self._insert(con, op.args)
        if kind == "update":
            return self._update(con, op.args)
        if kind == "batch":
            out: list[Any] = []
            for k, a in op.args:
                out.append(self._insert(con, a) if k == "create" else self._update(con, a))
            return out
        if kind == "delete_expired":
            cur = con.execute(
                "DELETE FROM signals WHERE expires_at IS NOT NULL AND expires_at <= ?", (op.args,)
            )
            self._stats["cleaned"] += cur.rowcount
            return cur.rowcount
        if kind == "import":
            n = 0
            for a in op.args:
                con.execute(
                    "INSERT OR IGNORE INTO signals (" + _COLUMNS + ") VALUES (?,?,?,?,?,?,?,?)", a
                )
                n += 1
            con.execute(
                "INSERT OR REPLACE INTO store_meta VALUES ('json_imported', ?)", (str(time.time()),)
            )
            return n
        if kind == "sync":
            return None
        raise AssertionError(kind)

    @staticmethod
    def _insert(con: sqlite3.Connection, a: tuple[Any, ...]) -> Signal:
        cur = con.execute(_INSERT, a)
        meta = json.loads(a[6]) if a[6] else None
        return Signal(cur.lastrowid, a[0], a[1], a[2], a[3], a[4], a[5], meta)  # type: ignore[arg-type]

    @staticmethod
    def _update(con: sqlite3.Connection, a: dict[str, Any]) -> Signal | None:
        if a.get("id") is not None:
            row = con.execute(
                "SELECT " + _COLUMNS + " FROM signals WHERE id = ?", (a["id"],)
            ).fetchone()
        else:
            row = con.execute(
                "SELECT " + _COLUMNS + " FROM signals WHERE symbol = ? AND signal_type = ? "
                "AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at DESC, id DESC "
                "LIMIT 1",
                (a["symbol"], a["signal_type"], a["now"]),
            ).fetchone()
        if row is None:
            return None
        old = _row(row)
        new = dataclasses.replace(
            old,
            value=a.get("value", old.value),
            confidence=a.get("confidence", old.confidence),
            expires_at=a["expires_at"] if "expires_at" in a else old.expires_at,
            metadata=a["metadata"] if "metadata" in a else old.metadata,
        )
        con.execute(
            "UPDATE signals SET value = ?, confidence = ?, expires_at = ?, metadata = ? "
            "WHERE id = ?",
            (
                new.value,
                new.confidence,
                new.expires_at,
                json.dumps(new.metadata) if new.metadata is not None else None,
                new.id,
            ),
        )
        return new

    # -- submitting ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise FerrotickError(f"signal store {self.db_path!r} is closed")

    def _submit(self, kind: str, args: Any) -> asyncio.Future[Any]:
        self._check_open()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put(_Op(kind, args, loop, fut))
        return fut

    def _submit_sync(self, kind: str, args: Any) -> Any:
        self._check_open()
        fut: Any = _CFuture()
        self._queue.put(_Op(kind, args, None, fut))
        return fut.result()

    def _create_args(
        self,
        symbol: Any,
        signal_type: Any,
        value: Any,
        confidence: Any,
        ttl: Any,
        metadata: Any,
        now: float,
        where: str = "",
    ) -> tuple[Any, ...]:
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"{where}symbol: expected a non-empty string, got {symbol!r}")
        st = self._signal_type(signal_type, where)
        v = _finite(f"{where}value", value)
        c = _finite(f"{where}confidence", confidence)
        if not 0.0 <= c <= 1.0:
            raise ConfigError(f"{where}confidence: expected a number in [0, 1], got {confidence!r}")
        ttl = self.default_ttl if ttl is _DEFAULT else ttl
        ttl = seconds(f"{where}ttl", ttl, positive=True, allow_none=True)
        meta = _meta(f"{where}metadata", metadata)
        return (symbol, st, v, c, now, None if ttl is None else now + ttl, meta)

    def _signal_type(self, t: Any, where: str = "") -> str:
        if isinstance(t, str) and t in self.signal_types:
            return t
        raise ConfigError(
            f"{where}signal_type: expected one of {sorted(self.signal_types)}, got {t!r} "
            "(add types with signal_types=)"
        )

    def _update_args(self, op: Mapping[str, Any], now: float, where: str) -> dict[str, Any]:
        a: dict[str, Any] = {"now": now}
        if op.get("id") is not None:
            a["id"] = integer(f"{where}id", op["id"])
        else:
            sym = op.get("symbol")
            if not isinstance(sym, str) or not sym:
                raise ConfigError(f"{where}symbol: expected a non-empty string, got {sym!r}")
            a["symbol"] = sym
            a["signal_type"] = self._signal_type(op.get("signal_type"), where)
        if "value" in op:
            a["value"] = _finite(f"{where}value", op["value"])
        if "confidence" in op:
            c = _finite(f"{where}confidence", op["confidence"])
            if not 0.0 <= c <= 1.0:
                raise ConfigError(f"{where}confidence: expected a number in [0, 1], got {c!r}")
            a["confidence"] = c
        if "ttl" in op:
            ttl = seconds(f"{where}ttl", op["ttl"], positive=True, allow_none=True)
            a["expires_at"] = None if ttl is None else now + ttl
        if "metadata" in op:
            meta = _meta(f"{where}metadata", op["metadata"])
            a["metadata"] = json.loads(meta) if meta else None
        return a

    # -- the seed's API ------------------------------------------------------

    def create_signal_async(
        self,
        symbol: str,
        signal_type: str,
        value: float,
        confidence: float = 1.0,
        *,
        ttl: float | None | object = _DEFAULT,
        metadata: Mapping[str, Any] | None = None,
    ) -> asyncio.Future[Signal]:
        """Stores a signal; the returned future resolves to the :class:`Signal` once
        it is committed. ``ttl`` seconds (default ``default_ttl``; None: never
        expires)."""
        now = time.time()
        tv, tc = type(value), type(confidence)
        if (
            metadata is None
            and ttl is _DEFAULT
            and type(symbol) is str
            and symbol
            and signal_type in self.signal_types
            and (tv is float or tv is int)
            and (tc is float or tc is int)
            and math.isfinite(value)
            and 0.0 <= confidence <= 1.0
        ):
            # the common case, checked inline: 64 writers spend their time here
            ttl_s = self.default_ttl
            args: tuple[Any, ...] = (
                symbol,
                signal_type,
                float(value),
                float(confidence),
                now,
                None if ttl_s is None else now + ttl_s,
                None,
            )
        else:
            args = self._create_args(symbol, signal_type, value, confidence, ttl, metadata, now)
        if self._closed:
            self._check_open()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put(_Op("create", args, loop, fut))
        return fut

    def update_signal_async(
        self,
        symbol: str | None = None,
        signal_type: str | None = None,
        *,
        id: int | None = None,
        **changes: Any,
    ) -> asyncio.Future[Signal | None]:
        """Updates the signal ``id``, or the newest unexpired one for (symbol,
        signal_type); resolves to the updated signal or None when there is none."""
        op = {"symbol": symbol, "signal_type": signal_type, "id": id, **changes}
        return self._submit("update", self._update_args(op, time.time(), ""))

    async def process_multiple_signals_async(
        self, operations: Sequence[Mapping[str, Any]]
    ) -> list[Signal | None]:
        """Runs create/update operations in one transaction: all or none. Each
        operation is a dict with ``type`` ("create" or "update") and the fields
        of :meth:`create_signal_async` / :meth:`update_signal_async`."""
        now = time.time()
        ops: list[tuple[str, Any]] = []
        for i, op in enumerate(operations):
            where = f"operations[{i}]."
            if not isinstance(op, Mapping):
                raise ConfigError(f"operations[{i}]: expected a dict, got {op!r}")
            kind = op.get("type", "create")
            if kind == "create":
                ops.append(
                    (
                        "create",
                        self._create_args(
                            op.get("symbol"),
                            op.get("signal_type"),
                            op.get("value"),
                            op.get("confidence", 1.0),
                            op.get("ttl", _DEFAULT),
                            op.get("metadata"),
                            now,
                            where,
                        ),
                    )
                )
            elif kind == "update":
                ops.append(("update", self._update_args(op, now, where)))
            else:
                raise ConfigError(f"{where}type: expected 'create' or 'update', got {kind!r}")
        return await self._submit("batch", ops)

    async def _read(self, sql: str, params: Sequence[Any]) -> list[Signal]:
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._read_sync, sql, params)

    def _read_sync(self, sql: str, params: Sequence[Any]) -> list[Signal]:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return [_row(r) for r in con.execute(sql, params).fetchall()]

    def _query(
        self,
        symbols: Sequence[str] | None,
        signal_type: str | None,
        since: float | None,
        until: float | None,
        include_expired: bool,
        limit: int | None,
    ) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if symbols is not None:
            where.append(f"symbol IN ({','.join('?' * len(symbols))})")
            params.extend(symbols)
        if signal_type is not None:
            where.append("signal_type = ?")
            params.append(self._signal_type(signal_type))
        if since is not None:
            where.append("created_at >= ?")
            params.append(_finite("since", since))
        if until is not None:
            where.append("created_at < ?")
            params.append(_finite("until", until))
        if not include_expired:
            where.append("(expires_at IS NULL OR expires_at > ?)")
            params.append(time.time())
        sql = "SELECT " + _COLUMNS + " FROM signals"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {integer('limit', limit, min=1)}"
        return sql, params

    async def get_signals_async(
        self,
        symbol: str | None = None,
        *,
        signal_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        include_expired: bool = False,
        limit: int | None = None,
    ) -> list[Signal]:
        """Signals newest first, filtered by symbol, type and ``since <= created_at
        < until`` (Unix seconds)."""
        syms = None if symbol is None else [symbol]
        return await self._read(
            *self._query(syms, signal_type, since, until, include_expired, limit)
        )

    async def get_signals_for_multiple_symbols_async(
        self,
        symbols: Sequence[str],
        *,
        signal_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        include_expired: bool = False,
    ) -> dict[str, list[Signal]]:
        """``{symbol: [signals newest first]}`` for each symbol asked for."""
        symbols = list(symbols)
        for s in symbols:
            if not isinstance(s, str):
                raise ConfigError(f"symbols: expected strings, got {s!r}")
        rows = await self._read(
            *self._query(symbols, signal_type, since, until, include_expired, None)
        )
        out: dict[str, list[Signal]] = {s: [] for s in symbols}
        for r in rows:
            out[r.symbol].append(r)
        return out

    async def get_signal_async(self, id: int) -> Signal | None:
        rows = await self._read(
            "SELECT " + _COLUMNS + " FROM signals WHERE id = ?", (integer("id", id),)
        )
        return rows[0] if rows else None

    async def cleanup_expired_async(self) -> int:
        """Deletes expired signals; returns how many."""
        return await self._submit("delete_expired", time.time())

    def start(self) -> None:
        """Starts the periodic TTL cleanup on the running loop (``auto_cleanup``)."""
        if self.auto_cleanup and self._cleanup_task is None:
            self._cleanup_task = asyncio.get_running_loop().create_task(self._cleanup_loop())

    async def _cleanup_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.cleanup_interval)
            try:
                await self.cleanup_expired_async()
            except FerrotickError:
                pass  # counted in stats()["errors"]; the next round tries again

    # -- the pipeline's sink contract -----------------------------------------

    async def write(self, item: Any) -> Any:
        """Sink contract: stores a batch (a list of signals) in one transaction and
        returns the stored :class:`Signal` objects; a single signal is stored alone.
        A signal is a :class:`Signal`-like object or a dict with the fields of
        :meth:`create_signal_async`."""
        if isinstance(item, Sequence) and not isinstance(item, (str, bytes)):
            ops = [{**self._fields_of(x), "type": "create"} for x in item]
            return await self.process_multiple_signals_async(ops) if ops else []
        return await self.create_signal_async(**self._fields_of(item))

    @staticmethod
    def _fields_of(item: Any) -> dict[str, Any]:
        if isinstance(item, Mapping):
            d = dict(item)
        else:
            d = {
                k: getattr(item, k)
                for k in ("symbol", "signal_type", "value", "confidence", "metadata")
                if hasattr(item, k)
            }
        d.pop("type", None)
        d.pop("id", None)
        return d

    async def flush(self) -> None:
        """Returns once every write submitted before it is committed."""
        await self._submit("sync", None)

    # -- JSON form -----------------------------------------------------------

    def _import_json_once(self) -> None:
        con = self._connect()
        try:
            done = con.execute(
                "SELECT value FROM store_meta WHERE key = 'json_imported'"
            ).fetchone()
        finally:
            con.close()
        assert self.json_path is not None
        if done is not None or not os.path.exists(self.json_path):
            return
        try:
            with open(self.json_path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"persistence_file {self.json_path!r}: cannot read: {e}") from e
        items = data.get("signals", []) if isinstance(data, dict) else data
        rows = []
        for i, s in enumerate(items):
            try:
                rows.append(
                    (
                        s.get("id"),
                        s["symbol"],
                        s["signal_type"],
                        float(s["value"]),
                        float(s.get("confidence", 1.0)),
                        float(s.get("created_at", time.time())),
                        s.get("expires_at"),
                        json.dumps(s["metadata"]) if s.get("metadata") is not None else None,
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                raise ConfigError(
                    f"persistence_file {self.json_path!r}: signal {i} is malformed: {e!r}"
                ) from e
        self._submit_sync("import", rows)

    def export_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """Writes every stored signal as JSON (atomically: a temporary file renamed
        over the target) to ``path`` or the persistence file; returns the path."""
        target = os.fspath(path) if path is not None else self.json_path
        if target is None:
            raise ConfigError("path: this store has no persistence_file; pass a path")
        self._submit_sync("sync", None)
        con = self._connect()
        try:
            rows = con.execute("SELECT " + _COLUMNS + " FROM signals ORDER BY id").fetchall()
        finally:
            con.close()
        doc = {"version": 1, "signals": [_row(r).to_dict() for r in rows]}
        tmp = f"{target}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return target

    # -- lifecycle -----------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {**self._stats, "queued": self._queue.qsize(), "path": self.db_path}

    async def health_check(self) -> bool:
        """True when the last commit succeeded and the database answers a read."""
        if self._closed or self._last_error is not None:
            return False
        await self._read("SELECT " + _COLUMNS + " FROM signals LIMIT 0", ())
        return True

    def register_health_check(self, checker: Any, name: str = "signal_store") -> None:
        """Adds :meth:`health_check` to an ``AsyncHealthChecker``."""
        checker.add_check(name, self.health_check)

    def close_sync(self) -> None:
        if self._closed:
            return
        if self.json_path is not None:
            self.export_json()
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        self._reader.shutdown(wait=True)
        if self._cleanup_task is not None:
            self._cleanup_task.cancel()

    async def close(self) -> None:
        """Commits what is queued, writes the JSON form (if any) and stops the
        threads."""
        if self._closed:
            return
        await asyncio.get_running_loop().run_in_executor(None, self.close_sync)

    async def __aenter__(self) -> SignalManager:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<SignalManager {self.db_path!r} writes={self._stats['writes']}>"


def _finite(name: str, v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    raise ConfigError(f"{name}: expected a finite number, got {v!r}")


def _meta(name: str, v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ConfigError(f"{name}: expected a dict, got {v!r}")
    try:
        return json.dumps(dict(v), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name}: not JSON-serialisable: {e}") from e


def _observe(n: int, commit_s: float, oldest_wait: float) -> None:
    m = _metrics()
    if m is None:
        return
    m[0].observe(n)
    m[1].observe(commit_s)
    m[2].observe(oldest_wait)


_METRICS: Any = None


def _metrics() -> Any:
    global _METRICS
    if _METRICS is None:
        try:
            from ..monitor import Histogram
        except ImportError:
            _METRICS = False
            return None
        try:
            _METRICS = (
                Histogram(
                    "ferrotick_signal_store_batch_size",
                    "Writes per SQLite commit of the signal store",
                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096),
                ),
                Histogram(
                    "ferrotick_signal_store_commit_seconds",
                    "Duration of one signal store commit",
                ),
                Histogram(
                    "ferrotick_signal_store_ack_seconds",
                    "From the submission of a commit's oldest write to its acknowledgement",
                ),
            )
        except Exception:  # noqa: BLE001  (a clashing registration: metrics stay off)
            _METRICS = False
    return _METRICS or None


_MANAGER: SignalManager | None = None


def initialize_async_signal_manager(
    persistence_file: str | os.PathLike[str] = "signals.json",
    auto_cleanup: bool = True,
    **kwargs: Any,
) -> SignalManager:
    """The seed's entry point: creates the process's signal manager (closing a
    previous one) and starts its TTL cleanup when a loop is running."""
    global _MANAGER
    if _MANAGER is not None:
        _MANAGER.close_sync()
    m = SignalManager(persistence_file, auto_cleanup=auto_cleanup, **kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        m.start()
    _MANAGER = m
    return m


def get_signal_manager() -> SignalManager:
    if _MANAGER is None:
        raise FerrotickError("no signal manager: call initialize_async_signal_manager() first")
    return _MANAGER
