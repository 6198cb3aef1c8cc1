"""SQLiteJobStore: jobs in an SQLite file, shared by the processes of one host."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from .._core import ConfigError, SchedulerError
from .._validate import seconds
from ._stores import Claim, ClaimResult, _BatchedJobStore, _Batcher, _state_from

_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS ferrotick_jobs (
    id TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_fire REAL,
    claimed INTEGER,
    claimed_by TEXT,
    last_run REAL,
    last_duration REAL,
    runs INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ferrotick_claims (
    job_id TEXT NOT NULL,
    fire INTEGER NOT NULL,
    owner TEXT NOT NULL,
    lease_until REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,  -- 0 running, 1 done, 2 lost
    PRIMARY KEY (job_id, fire)
);
"""


class SQLiteJobStore(_BatchedJobStore):
    """Jobs in an SQLite file, shared by the processes of one host.

    WAL mode and a busy timeout; every call runs on the store's own thread, so the
    event loop never waits on the file. A claim is a row in ``ferrotick_claims``
    (primary key ``(job_id, fire)``) inserted in the same transaction that moves the
    job's high-water mark."""

    persistent = True

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise ConfigError(f"SQLiteJobStore: path: expected a file path, got {path!r}")
        self.busy_timeout = seconds("SQLiteJobStore: busy_timeout", busy_timeout, positive=True)
        self.path = os.fspath(path)
        self._conn: sqlite3.Connection | None = None
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._batcher: _Batcher | None = None

    @property
    def label(self) -> str:
        return f"SQLiteJobStore({self.path!r})"

    def __repr__(self) -> str:
        return self.label

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._thread is None:
            raise SchedulerError(f"job store {self.label}: not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fn, *args)

    def _connect(self) -> None:
        # switching a new file to WAL returns "database is locked" at once (no busy
        # handler) while another process does the same: retry up to busy_timeout
        deadline = time.monotonic() + self.busy_timeout
        while True:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.executescript(_SQLITE_SCHEMA)
            except sqlite3.OperationalError as e:
                conn.close()
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
                continue
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            return

    async def open(self) -> None:
        if self._opened == 0:
            self._thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="ferrotick-sqlite"
            )
            try:
                await self._call(self._connect)
            except Exception as e:
                self._thread.shutdown(wait=False)
                self._thread = None
                raise SchedulerError(
                    f"job store {self.label}: cannot open the database: {type(e).__name__}: {e}"
                ) from None
            self._batcher = _Batcher(self._run_batch)
        await super().open()

    async def close(self) -> None:
        await super().close()
        if self._opened == 0 and self._thread is not None:
            if self._batcher is not None:
                await self._batcher.flush()
                self._batcher = None
            conn, self._conn = self._conn, None
            if conn is not None:
                await self._call(conn.close)
            self._thread.shutdown(wait=False)
            self._thread = None

    # -- thread-side -------------------------------------------------------------------

    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            r = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return r

    def _state_row(self, conn: sqlite3.Connection, job_id: str) -> dict[str, Any] | None:
        cur = conn.execute(
            "SELECT definition, paused, next_fire, claimed, claimed_by, last_run, last_duration,"
            " runs, errors, lost FROM ferrotick_jobs WHERE id = ?",
            (job_id,),
        )
        row = cur.fetchone()
        if row is None:
            return None
        names = [d[0] for d in cur.description]
        return dict(zip(names, row, strict=True))

    def _claim_one(self, conn: sqlite3.Connection, op: tuple[Any, ...]) -> Any:
        _, job_id, fire_us, owner, lease, next_fire = op
        row = conn.execute(
            "SELECT paused, claimed FROM ferrotick_jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            return Claim(ClaimResult.GONE, "", [])
        if row[0]:
            return Claim(ClaimResult.PAUSED, "", [])
        if row[1] is not None and row[1] >= fire_us:
            holder = conn.execute(
                "SELECT claimed_by FROM ferrotick_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            return Claim(ClaimResult.TAKEN, holder[0] or "", [])
        now = time.time()
        lost = conn.execute(
            "SELECT fire, owner FROM ferrotick_claims WHERE job_id = ? AND state = 0"
            " AND lease_until < ?",
            (job_id, now),
        ).fetchall()
        if lost:
            conn.execute(
                "UPDATE ferrotick_claims SET state = 2 WHERE job_id = ? AND state = 0"
                " AND lease_until < ?",
                (job_id, now),
            )
            conn.execute(
                "UPDATE ferrotick_jobs SET lost = lost + ? WHERE id = ?", (len(lost), job_id)
            )
        try:
            conn.execute(
                "INSERT INTO ferrotick_claims (job_id, fire, owner, lease_until) VALUES (?, ?, ?, ?)",
                (job_id, fire_us, owner, now + lease),
            )
        except sqlite3.IntegrityError:
            return Claim(ClaimResult.TAKEN, "", [])
        conn.execute(
            "UPDATE ferrotick_jobs SET claimed = ?, claimed_by = ?, next_fire = ? WHERE id = ?",
            (fire_us, owner, next_fire, job_id),
        )
        if row[1] is not None:
            # finished claims older than the previous one are no longer needed
            conn.execute(
                "DELETE FROM ferrotick_claims WHERE job_id = ? AND state != 0 AND fire < ?",
                (job_id, row[1]),
            )
        return Claim(ClaimResult.WON, "", [(f / 1e6, o) for f, o in lost])

    def _complete_one(self, conn: sqlite3.Connection, op: tuple[Any, ...]) -> Any:
        _, job_id, fire_us, last_run, duration, error = op
        conn.execute(
            "UPDATE ferrotick_claims SET state = 1 WHERE job_id = ? AND fire = ?", (job_id, fire_us)
        )
        conn.execute(
            "UPDATE ferrotick_jobs SET last_run = ?, last_duration = ?, runs = runs + 1,"
            " errors = errors + ? WHERE id = ?",
            (last_run, duration, 1 if error else 0, job_id),
        )
        return None

    def _batch(self, ops: list[tuple[Any, ...]]) -> list[Any]:
        def run(conn: sqlite3.Connection) -> list[Any]:
            out = []
            for op in ops:
                out.append(
                    self._claim_one(conn, op) if op[0] == "claim" else self._complete_one(conn, op)
                )
            return out

        return self._tx(run)  # type: ignore[no-any-return]

    async def _run_batch(self, ops: list[tuple[Any, ...]]) -> list[Any]:
        return await self._call(self._batch, ops)  # type: ignore[no-any-return]

    # -- loop-side ---------------------------------------------------------------------

    async def load_jobs(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        def run() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
            assert self._conn is not None
            cur = self._conn.execute(
                "SELECT id, definition, paused, next_fire, claimed, claimed_by, last_run,"
                " last_duration, runs, errors, lost FROM ferrotick_jobs"
            )
            names = [d[0] for d in cur.description]
            out = {}
            for row in cur.fetchall():
                d = dict(zip(names, row, strict=True))
                out[d["id"]] = (json.loads(d["definition"]), _state_from(d))
            return out

        return await self._guard(self._call(run))  # type: ignore[no-any-return]

    async def add(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> tuple[bool, dict[str, Any], dict[str, Any]]:
        text = json.dumps(definition, sort_keys=True)

        def run(conn: sqlite3.Connection) -> tuple[bool, dict[str, Any], dict[str, Any]]:
            cur = conn.execute(
                "INSERT OR IGNORE INTO ferrotick_jobs (id, definition, paused, next_fire)"
                " VALUES (?, ?, ?, ?)",
                (job_id, text, int(paused), next_fire),
            )
            created = cur.rowcount == 1
            row = self._state_row(conn, job_id)
            assert row is not None
            return created, json.loads(row["definition"]), _state_from(row)

        return await self._guard(self._call(self._tx, run))  # type: ignore[no-any-return]

    async def replace(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> None:
        text = json.dumps(definition, sort_keys=True)

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO ferrotick_jobs (id, definition, paused, next_fire) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET definition = excluded.definition,"
                " paused = excluded.paused, next_fire = excluded.next_fire",
                (job_id, text, int(paused), next_fire),
            )

        await self._guard(self._call(self._tx, run))

    async def update(self, job_id: str, **fields: Any) -> None:
        cols = {"paused": "paused", "next_fire": "next_fire"}
        sets = ", ".join(f"{cols[k]} = ?" for k in fields)
        vals = [int(v) if isinstance(v, bool) else v for v in fields.values()]

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(f"UPDATE ferrotick_jobs SET {sets} WHERE id = ?", (*vals, job_id))  # noqa: S608

        await self._guard(self._call(self._tx, run))

    async def remove(self, job_id: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM ferrotick_jobs WHERE id = ?", (job_id,))
            conn.execute("DELETE FROM ferrotick_claims WHERE job_id = ?", (job_id,))

        await self._guard(self._call(self._tx, run))
