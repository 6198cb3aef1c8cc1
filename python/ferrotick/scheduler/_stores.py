"""Job stores: where jobs live, and the leases that make each firing run once.

``MemoryJobStore`` (the default) keeps jobs in the process's memory.
``SQLiteJobStore`` (a file, for one host) and ``RedisJobStore`` persist job
definitions and run state, so that a restarted process resumes its schedule and
several processes (workers, replicas) share one schedule: every process computes
the same nominal fire times from the trigger, claims ``(job id, nominal time)``
before running it, and only the process that wins the claim runs it.

A claim succeeds only if no firing of the job at that nominal time *or later* has
been claimed (a per-job high-water mark, updated atomically with the claim), so a
firing is never run twice, even by a process whose clock lags or which comes back
after the lease expired. The lease (Redis ``SET NX PX``; a unique row in SQLite)
says who holds the firing and until when: a holder that dies mid-run leaves its
lease to expire, the firing is not retried (at most once), and the next claim of
the job counts it as lost.

Stored definitions: the callable by reference (``"module:qualname"``), ``args`` and
``kwargs`` pickled (protocol 4, base64), the trigger and the job options as JSON.
A store is therefore as trusted as the code that runs the jobs.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime as _dt
import importlib
import inspect
import json
import logging
import os
import pickle
import sqlite3
import time
import urllib.parse
import zoneinfo
from collections.abc import Awaitable, Callable
from typing import Any

from .. import _core
from .._core import ConfigError, SchedulerError
from .._validate import seconds
from ._tz import get_zone
from .triggers import BaseTrigger, CronTrigger, DateTrigger, IntervalTrigger

__all__ = ["BaseJobStore", "MemoryJobStore", "RedisJobStore", "SQLiteJobStore"]

logger = logging.getLogger("ferrotick.scheduler")

# claim results
CLAIM_WON = 1
CLAIM_TAKEN = 0  # claimed by another process (or a later firing was)
CLAIM_GONE = -1  # the job is no longer in the store
CLAIM_PAUSED = -2  # the job is paused in the store
CLAIM_RESET = -3  # the store lost its data (a Redis restarted without persistence)


def fire_key(nominal: float) -> int:
    """The claim key of a nominal fire time: integer microseconds."""
    return round(nominal * 1e6)


# -- serialization -----------------------------------------------------------------------


def callable_ref(func: Any, job_id: str) -> str:
    """``module:qualname`` of an importable callable, checked by importing it back."""
    if isinstance(func, str):
        resolve_ref(func, job_id)
        return func
    obj = func
    if inspect.ismethod(func):
        owner = func.__self__
        if not inspect.isclass(owner):
            raise ConfigError(
                f"job {job_id!r}: a persistent job store needs an importable callable; "
                f"{func!r} is a method bound to an instance (use a module-level function "
                "or a classmethod/staticmethod)"
            )
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<lambda>" in qualname or "<locals>" in qualname:
        raise ConfigError(
            f"job {job_id!r}: a persistent job store needs an importable callable "
            f"(a module-level function, class or static method), got {func!r}"
        )
    ref = f"{module}:{qualname}"
    try:
        found = resolve_ref(ref, job_id)
    except ConfigError:
        raise ConfigError(
            f"job {job_id!r}: {ref!r} cannot be imported back, so another process could "
            "not run it; a persistent job store needs a module-level function"
        ) from None
    if found is not func and found != func:
        raise ConfigError(
            f"job {job_id!r}: {ref!r} does not import back to the same callable "
            f"(got {found!r}); a persistent job store needs a module-level function"
        )
    return ref


def resolve_ref(ref: str, job_id: str) -> Callable[..., Any]:
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise ConfigError(f"job {job_id!r}: {ref!r} is not a 'module:qualname' reference")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except Exception as e:
        raise ConfigError(
            f"job {job_id!r}: cannot import {ref!r} ({type(e).__name__}: {e})"
        ) from None
    if not callable(obj):
        raise ConfigError(f"job {job_id!r}: {ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


def dump_value(value: Any, what: str, job_id: str) -> str:
    try:
        data = pickle.dumps(value, protocol=4)
    except Exception as e:
        raise ConfigError(
            f"job {job_id!r}: {what} cannot be stored in a persistent job store "
            f"(pickle failed: {type(e).__name__}: {e})"
        ) from None
    return base64.b64encode(data).decode("ascii")


def load_value(text: str) -> Any:
    return pickle.loads(base64.b64decode(text))  # noqa: S301 (the store is trusted, see module doc)


def _tz_desc(tz: Any) -> Any:
    if isinstance(tz, zoneinfo.ZoneInfo):
        return tz.key
    if isinstance(tz, _dt.timezone):
        off = tz.utcoffset(None)
        return "UTC" if not off else {"offset": off.total_seconds()}
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(key, str):
        return key
    raise ConfigError(f"timezone: {tz!r} cannot be stored")


def _tz_from_desc(desc: Any) -> Any:
    if isinstance(desc, dict):
        return _dt.timezone(_dt.timedelta(seconds=desc["offset"]))
    return desc


def trigger_desc(trigger: BaseTrigger, job_id: str) -> dict[str, Any]:
    """A JSON description of a trigger (a pickle for triggers ferrotick does not know)."""
    if type(trigger) is IntervalTrigger:
        return {
            "type": "interval",
            "seconds": trigger.interval,
            "start": trigger.start,
            "end": trigger.end,
            "timezone": _tz_desc(trigger.timezone),
            "jitter": trigger.jitter,
        }
    if type(trigger) is CronTrigger:
        spec = getattr(trigger, "_spec", None)
        if spec is None:  # pragma: no cover - every constructor sets it
            raise ConfigError(f"job {job_id!r}: this cron trigger cannot be stored")
        return {
            "type": "cron",
            "spec": spec,
            "start": trigger.start,
            "end": trigger.end,
            "timezone": _tz_desc(trigger.timezone),
            "jitter": trigger.jitter,
        }
    if type(trigger) is DateTrigger:
        return {"type": "date", "run_at": trigger.run_at, "timezone": _tz_desc(trigger.timezone)}
    return {"type": "pickle", "data": dump_value(trigger, "the trigger", job_id)}


def trigger_from_desc(desc: dict[str, Any]) -> BaseTrigger:
    kind = desc["type"]
    if kind == "pickle":
        trig = load_value(desc["data"])
        if not isinstance(trig, BaseTrigger):
            raise ConfigError("trigger: the stored trigger is not a trigger")
        return trig
    tz = _tz_from_desc(desc["timezone"])
    zone_info, _ = get_zone(tz)

    def dt(t: float | None) -> _dt.datetime | None:
        return None if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc)

    if kind == "interval":
        trig_i = IntervalTrigger(
            seconds=desc["seconds"],
            end_date=dt(desc["end"]),
            timezone=tz,
            jitter=desc["jitter"],
        )
        trig_i.start = desc["start"]  # exact float, not through a datetime
        return trig_i
    if kind == "cron":
        spec_kind, payload = desc["spec"]
        if spec_kind == "crontab":

            def recipe(z: Any) -> Any:
                return _core.CronSchedule.parse(payload, z)
        elif spec_kind == "fields":

            def recipe(z: Any) -> Any:
                return _core.CronSchedule.fields(z, **payload)
        elif spec_kind == "calendar":

            def recipe(z: Any) -> Any:
                return _core.CronSchedule.calendar(z, **payload)
        else:
            raise ConfigError(f"trigger: unknown stored cron form {spec_kind!r}")
        trig_c = CronTrigger(timezone=tz, jitter=desc["jitter"], _recipe=recipe, _spec=desc["spec"])
        trig_c.start, trig_c.end = desc["start"], desc["end"]
        return trig_c
    if kind == "date":
        run = _dt.datetime.fromtimestamp(desc["run_at"], zone_info)
        trig_d = DateTrigger(run, timezone=tz)
        trig_d.run_at = desc["run_at"]
        return trig_d
    raise ConfigError(f"trigger: unknown stored trigger type {kind!r}")


def same_definition(local: dict[str, Any], stored: dict[str, Any], implicit_start: bool) -> bool:
    """Whether two job definitions describe the same job. An interval anchored
    implicitly (no start_date: when it was added) takes the stored anchor, so the
    anchor is not compared; args and kwargs compare by value."""
    a, b = dict(local), dict(stored)
    for key in ("args", "kwargs"):
        x, y = a.pop(key, None), b.pop(key, None)
        if x != y:
            try:
                if load_value(x) != load_value(y):
                    return False
            except Exception:
                return False
    ta, tb = dict(a.pop("trigger")), dict(b.pop("trigger"))
    if implicit_start and ta.get("type") == "interval" and tb.get("type") == "interval":
        ta.pop("start", None)
        tb.pop("start", None)
    a.pop("name", None)
    b.pop("name", None)
    return a == b and json.dumps(ta, sort_keys=True) == json.dumps(tb, sort_keys=True)


def redact_url(url: str) -> str:
    """The URL without its user info (a password) or query string."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError:
        return "<unparseable URL>"
    if scheme not in ("redis", "rediss", "unix"):
        return "<unparseable URL>"
    return _core.redact_url(url)


# -- stores --------------------------------------------------------------------------------


class _Batcher:
    """Collects the operations submitted during one loop iteration (and while a
    batch is in flight) and sends them as one batch: one round trip to Redis, one
    transaction in SQLite. Order is kept."""

    def __init__(self, run: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
        self._run = run
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, op: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="ferrotick-jobstore")
        return fut

    async def _drain(self) -> None:
        await asyncio.sleep(0)
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._run([op for op, _ in batch])
            except asyncio.CancelledError:
                for _, f in batch:
                    f.cancel()
                raise
            except Exception as e:
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
                continue
            for (_, f), r in zip(batch, results, strict=True):
                if f.done():
                    continue
                if isinstance(r, BaseException):
                    f.set_exception(r)
                else:
                    f.set_result(r)

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        for _, f in self._queue:
            f.cancel()
        self._queue = []


class BaseJobStore:
    """Base of job stores. ``persistent`` stores share jobs between processes and
    across restarts; the memory store does neither."""

    persistent = False

    def __init__(self) -> None:
        self._stats = {
            "claims": 0,
            "won": 0,
            "claimed_elsewhere": 0,
            "lost": 0,
            "errors": 0,
            "outages": 0,
        }
        self._available = True
        self._opened = 0

    @property
    def label(self) -> str:
        return type(self).__name__

    def stats(self) -> dict[str, Any]:
        """Claims made and won, claims lost to other processes, lost firings
        observed, failed store calls, outages (transitions to unreachable) and
        whether the store is reachable now."""
        return {**self._stats, "available": self._available}

    async def open(self) -> None:
        """Connects (reference-counted: one ``close()`` per ``open()``)."""
        self._opened += 1

    async def close(self) -> None:
        self._opened = max(0, self._opened - 1)

    async def __aenter__(self) -> BaseJobStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{self.label}()"

    # -- bookkeeping of the outage state -------------------------------------------------

    def _failed(self, e: BaseException) -> SchedulerError:
        self._stats["errors"] += 1
        err = SchedulerError(f"job store {self.label}: {self._describe_error(e)}")
        if self._available:
            self._available = False
            self._stats["outages"] += 1
            logger.warning("job store %s is unreachable: %s", self.label, err)
        return err

    def _succeeded(self) -> None:
        if not self._available:
            self._available = True
            logger.warning("job store %s is reachable again", self.label)

    def _describe_error(self, e: BaseException) -> str:
        return f"{type(e).__name__}: {e}"

    async def _guard(self, aw: Awaitable[Any]) -> Any:
        try:
            r = await aw
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise self._failed(e) from None
        self._succeeded()
        return r

    # -- the operations of a persistent store (see SQLiteJobStore / RedisJobStore) -------

    async def load_jobs(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """``{job id: (definition, state)}``."""
        return {}

    async def job_states(self) -> dict[str, dict[str, Any]]:
        """The shared run state of every stored job: next_fire, claimed (the last
        claimed nominal time), claimed_by, last_run, last_duration, runs, errors,
        lost, paused."""
        return {jid: state for jid, (_, state) in (await self.load_jobs()).items()}

    async def _add(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> tuple[bool, dict[str, Any], dict[str, Any]]:
        """Creates the job if absent: (created, stored definition, stored state)."""
        raise NotImplementedError

    async def _replace(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> None:
        raise NotImplementedError

    async def _update(self, job_id: str, **fields: Any) -> None:
        raise NotImplementedError

    async def _remove(self, job_id: str) -> None:
        raise NotImplementedError

    async def _claim(
        self, job_id: str, fire: float, owner: str, lease: float, next_fire: float | None
    ) -> tuple[int, str, list[tuple[float, str]]]:
        """(result, holder when taken, [(nominal, owner) of firings found lost])."""
        raise NotImplementedError

    async def _complete(
        self, job_id: str, fire: float, last_run: float, duration: float, error: bool
    ) -> None:
        raise NotImplementedError

    def _count_claim(self, result: tuple[int, str, list[tuple[float, str]]]) -> None:
        s = self._stats
        s["claims"] += 1
        if result[0] == CLAIM_WON:
            s["won"] += 1
        elif result[0] == CLAIM_TAKEN:
            s["claimed_elsewhere"] += 1
        s["lost"] += len(result[2])


class MemoryJobStore(BaseJobStore):
    """Jobs in this process only (the default): nothing is shared or kept."""


def _state_from(row: dict[str, Any]) -> dict[str, Any]:
    def num(v: Any) -> float | None:
        return None if v is None or v == "" else float(v)

    claimed = row.get("claimed")
    return {
        "next_fire": num(row.get("next_fire")),
        "claimed": None if claimed in (None, "") else int(claimed) / 1e6,
        "claimed_by": row.get("claimed_by") or None,
        "last_run": num(row.get("last_run")),
        "last_duration": num(row.get("last_duration")),
        "runs": int(row.get("runs") or 0),
        "errors": int(row.get("errors") or 0),
        "lost": int(row.get("lost") or 0),
        "paused": str(row.get("paused") or "0") in ("1", "True"),
    }


# -- SQLite --------------------------------------------------------------------------------

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


class SQLiteJobStore(BaseJobStore):
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
            return (CLAIM_GONE, "", [])
        if row[0]:
            return (CLAIM_PAUSED, "", [])
        if row[1] is not None and row[1] >= fire_us:
            holder = conn.execute(
                "SELECT claimed_by FROM ferrotick_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            return (CLAIM_TAKEN, holder[0] or "", [])
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
            return (CLAIM_TAKEN, "", [])
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
        return (CLAIM_WON, "", [(f / 1e6, o) for f, o in lost])

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

    async def _add(
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

    async def _replace(
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

    async def _update(self, job_id: str, **fields: Any) -> None:
        cols = {"paused": "paused", "next_fire": "next_fire"}
        sets = ", ".join(f"{cols[k]} = ?" for k in fields)
        vals = [int(v) if isinstance(v, bool) else v for v in fields.values()]

        def run(conn: sqlite3.Connection) -> None:
            conn.execute(f"UPDATE ferrotick_jobs SET {sets} WHERE id = ?", (*vals, job_id))  # noqa: S608

        await self._guard(self._call(self._tx, run))

    async def _remove(self, job_id: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM ferrotick_jobs WHERE id = ?", (job_id,))
            conn.execute("DELETE FROM ferrotick_claims WHERE job_id = ?", (job_id,))

        await self._guard(self._call(self._tx, run))

    async def _claim(
        self, job_id: str, fire: float, owner: str, lease: float, next_fire: float | None
    ) -> tuple[int, str, list[tuple[float, str]]]:
        if self._batcher is None:
            raise SchedulerError(f"job store {self.label}: not open")
        r = await self._guard(
            self._batcher.submit(("claim", job_id, fire_key(fire), owner, lease, next_fire))
        )
        self._count_claim(r)
        return r  # type: ignore[no-any-return]

    async def _complete(
        self, job_id: str, fire: float, last_run: float, duration: float, error: bool
    ) -> None:
        if self._batcher is None:
            return
        await self._guard(
            self._batcher.submit(("complete", job_id, fire_key(fire), last_run, duration, error))
        )


# -- Redis ---------------------------------------------------------------------------------

# KEYS: jobs hash, state hash, in-flight hash, lease key, marker
# ARGV: job id, fire (us), owner, lease (ms), next fire ('' = none), lease key prefix
_CLAIM_LUA = """
if redis.call('EXISTS', KEYS[5]) == 0 then return {-3, ''} end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {-1, ''} end
if redis.call('HGET', KEYS[2], 'paused') == '1' then return {-2, ''} end
local claimed = redis.call('HGET', KEYS[2], 'claimed')
if claimed and tonumber(claimed) >= tonumber(ARGV[2]) then
  return {0, redis.call('HGET', KEYS[2], 'claimed_by') or ''}
end
if not redis.call('SET', KEYS[4], ARGV[3], 'NX', 'PX', ARGV[4]) then return {0, ''} end
local out = {1, ''}
local inflight = redis.call('HGETALL', KEYS[3])
for i = 1, #inflight, 2 do
  if redis.call('EXISTS', ARGV[6] .. inflight[i]) == 0 then
    redis.call('HDEL', KEYS[3], inflight[i])
    redis.call('HINCRBY', KEYS[2], 'lost', 1)
    table.insert(out, inflight[i])
    table.insert(out, inflight[i + 1])
  end
end
redis.call('HSET', KEYS[2], 'claimed', ARGV[2], 'claimed_by', ARGV[3], 'next_fire', ARGV[5])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
return out
"""

# KEYS: jobs hash, state hash, in-flight hash, lease key
# ARGV: job id, fire (us), last run, duration, error ('1'/'0')
_COMPLETE_LUA = """
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[4])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'last_run', ARGV[3], 'last_duration', ARGV[4])
redis.call('HINCRBY', KEYS[2], 'runs', 1)
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[2], 'errors', 1) end
return 1
"""

# KEYS: jobs hash, state hash, marker; ARGV: job id, definition, next fire, paused
_ADD_LUA = """
redis.call('SET', KEYS[3], '1')
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return {0, cur, redis.call('HGETALL', KEYS[2])} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'next_fire', ARGV[3], 'paused', ARGV[4])
return {1, ARGV[2], redis.call('HGETALL', KEYS[2])}
"""


def _check_redis_url(url: Any) -> str:
    if not isinstance(url, str):
        raise ConfigError(
            f"RedisJobStore: url: expected a redis:// URL string, got {type(url).__name__}"
        )
    hint = "expected redis://[[user]:password@]host[:port][/db], rediss://... or unix://path"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"RedisJobStore: the URL {redact_url(url)!r} does not parse ({hint})"
        ) from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"RedisJobStore: the URL {redact_url(url)!r} does not parse ({hint})")
    if parts.scheme != "unix":
        if not parts.hostname:
            raise ConfigError(f"RedisJobStore: the URL {redact_url(url)!r} has no host ({hint})")
        if port == 0:
            raise ConfigError(f"RedisJobStore: the URL {redact_url(url)!r} has port 0 ({hint})")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ConfigError(
                f"RedisJobStore: the URL {redact_url(url)!r}: the database {db!r} is not a number"
            )
    return url


class RedisJobStore(BaseJobStore):
    """Jobs in Redis, shared by processes on any number of hosts.

    Needs the ``redis`` package (``pip install redis``). A claim is one Lua script
    (``SET lease NX PX`` plus the job's high-water mark); the claims of one loop
    iteration go in one pipeline. Short socket timeouts: an unreachable Redis fails
    a claim within ``socket_timeout`` seconds, never hangs the scheduler."""

    persistent = True

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "ferrotick:scheduler",
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
    ) -> None:
        super().__init__()
        self._url = _check_redis_url(url)
        self.url = redact_url(url)
        try:
            self._password = urllib.parse.urlsplit(url).password
        except ValueError:  # pragma: no cover - checked above
            self._password = None
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError("RedisJobStore: prefix: expected a non-empty string")
        for name, v in (("socket_timeout", socket_timeout), ("connect_timeout", connect_timeout)):
            seconds(f"RedisJobStore: {name}", v, positive=True)
        try:
            import redis.asyncio  # noqa: F401
        except ImportError:
            raise ConfigError("RedisJobStore needs the redis package: pip install redis") from None
        self.prefix = prefix
        self.socket_timeout = float(socket_timeout)
        self.connect_timeout = float(connect_timeout)
        self._client: Any = None
        self._batcher: _Batcher | None = None
        self._shas: dict[str, str] = {}

    @property
    def label(self) -> str:
        return f"RedisJobStore({self.url!r}, prefix={self.prefix!r})"

    def __repr__(self) -> str:
        return self.label

    def _describe_error(self, e: BaseException) -> str:
        msg = f"{type(e).__name__}: {e}"
        if self._password:
            msg = msg.replace(self._password, "***")
        return msg.replace(self._url, self.url)

    # keys
    def _k_jobs(self) -> str:
        return f"{self.prefix}:jobs"

    def _k_marker(self) -> str:
        # set whenever a job is written, never deleted: its absence means that the
        # Redis lost its data (restarted without persistence), not that jobs were removed
        return f"{self.prefix}:marker"

    def _k_state(self, job_id: str) -> str:
        return f"{self.prefix}:state:{job_id}"

    def _k_inflight(self, job_id: str) -> str:
        return f"{self.prefix}:inflight:{job_id}"

    def _k_lease_prefix(self, job_id: str) -> str:
        return f"{self.prefix}:lease:{job_id}:"

    async def open(self) -> None:
        if self._opened == 0:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            try:
                client = Redis.from_url(
                    self._url,
                    socket_timeout=self.socket_timeout,
                    socket_connect_timeout=self.connect_timeout,
                    retry=Retry(NoBackoff(), 1),
                    decode_responses=True,
                    health_check_interval=0,
                )
            except Exception as e:
                raise ConfigError(f"job store {self.label}: {self._describe_error(e)}") from None
            try:
                await asyncio.wait_for(
                    self._load_scripts(client), self.connect_timeout + self.socket_timeout
                )
            except Exception as e:
                await client.aclose()
                msg = self._describe_error(e) if not isinstance(e, TimeoutError) else "timed out"
                raise SchedulerError(f"job store {self.label}: cannot use Redis: {msg}") from None
            self._client = client
            self._batcher = _Batcher(self._run_batch)
        await super().open()

    async def _load_scripts(self, client: Any) -> None:
        await client.ping()
        for name, body in (("claim", _CLAIM_LUA), ("complete", _COMPLETE_LUA), ("add", _ADD_LUA)):
            self._shas[name] = await client.script_load(body)

    async def close(self) -> None:
        await super().close()
        if self._opened == 0 and self._client is not None:
            if self._batcher is not None:
                await self._batcher.flush()
                self._batcher = None
            client, self._client = self._client, None
            try:
                await client.aclose()
            except Exception:  # pragma: no cover - closing a dead connection
                pass

    def _require(self) -> Any:
        if self._client is None:
            raise SchedulerError(f"job store {self.label}: not open")
        return self._client

    async def _evalsha(self, name: str, keys: list[str], args: list[Any]) -> Any:
        from redis.exceptions import NoScriptError

        client = self._require()
        try:
            return await client.evalsha(self._shas[name], len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted: its script cache is empty
            await self._load_scripts(client)
            return await client.evalsha(self._shas[name], len(keys), *keys, *args)

    async def _run_batch(self, ops: list[tuple[Any, ...]]) -> list[Any]:
        from redis.exceptions import NoScriptError

        client = self._require()
        for attempt in range(2):
            pipe = client.pipeline(transaction=False)
            for op in ops:
                if op[0] == "claim":
                    _, job_id, fire_us, owner, lease, next_fire = op
                    pipe.evalsha(
                        self._shas["claim"],
                        5,
                        self._k_jobs(),
                        self._k_state(job_id),
                        self._k_inflight(job_id),
                        f"{self._k_lease_prefix(job_id)}{fire_us}",
                        self._k_marker(),
                        job_id,
                        fire_us,
                        owner,
                        max(1, round(lease * 1000)),
                        "" if next_fire is None else repr(next_fire),
                        self._k_lease_prefix(job_id),
                    )
                else:
                    _, job_id, fire_us, last_run, duration, error = op
                    pipe.evalsha(
                        self._shas["complete"],
                        4,
                        self._k_jobs(),
                        self._k_state(job_id),
                        self._k_inflight(job_id),
                        f"{self._k_lease_prefix(job_id)}{fire_us}",
                        job_id,
                        fire_us,
                        repr(last_run),
                        repr(duration),
                        "1" if error else "0",
                    )
            results = await pipe.execute(raise_on_error=False)
            if attempt == 0 and any(isinstance(r, NoScriptError) for r in results):
                # a NOSCRIPT reply ran nothing: load the scripts and send the batch again
                await self._load_scripts(client)
                continue
            break
        out: list[Any] = []
        for op, r in zip(ops, results, strict=True):
            if isinstance(r, BaseException):
                out.append(r)
            elif op[0] == "claim":
                code, holder, *rest = r
                lost = [(int(rest[i]) / 1e6, rest[i + 1]) for i in range(0, len(rest), 2)]
                out.append((int(code), holder or "", lost))
            else:
                out.append(None)
        return out

    async def load_jobs(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        async def run() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
            client = self._require()
            defs = await client.hgetall(self._k_jobs())
            ids = sorted(defs)
            pipe = client.pipeline(transaction=False)
            for jid in ids:
                pipe.hgetall(self._k_state(jid))
            states = await pipe.execute() if ids else []
            return {
                jid: (json.loads(defs[jid]), _state_from(st))
                for jid, st in zip(ids, states, strict=True)
            }

        return await self._guard(run())  # type: ignore[no-any-return]

    async def _add(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> tuple[bool, dict[str, Any], dict[str, Any]]:
        text = json.dumps(definition, sort_keys=True)
        r = await self._guard(
            self._evalsha(
                "add",
                [self._k_jobs(), self._k_state(job_id), self._k_marker()],
                [
                    job_id,
                    text,
                    "" if next_fire is None else repr(next_fire),
                    "1" if paused else "0",
                ],
            )
        )
        created, stored, flat = r
        state = dict(zip(flat[::2], flat[1::2], strict=True))
        return bool(int(created)), json.loads(stored), _state_from(state)

    async def _replace(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> None:
        client = self._require()
        pipe = client.pipeline(transaction=True)
        pipe.hset(self._k_jobs(), job_id, json.dumps(definition, sort_keys=True))
        pipe.hset(
            self._k_state(job_id),
            mapping={
                "next_fire": "" if next_fire is None else repr(next_fire),
                "paused": "1" if paused else "0",
            },
        )
        await self._guard(pipe.execute())

    async def _update(self, job_id: str, **fields: Any) -> None:
        mapping = {}
        for k, v in fields.items():
            if k == "paused":
                mapping[k] = "1" if v else "0"
            else:
                mapping[k] = "" if v is None else repr(float(v))
        await self._guard(self._require().hset(self._k_state(job_id), mapping=mapping))

    async def _remove(self, job_id: str) -> None:
        pipe = self._require().pipeline(transaction=True)
        pipe.hdel(self._k_jobs(), job_id)
        pipe.delete(self._k_state(job_id), self._k_inflight(job_id))
        await self._guard(pipe.execute())

    async def _claim(
        self, job_id: str, fire: float, owner: str, lease: float, next_fire: float | None
    ) -> tuple[int, str, list[tuple[float, str]]]:
        if self._batcher is None:
            raise SchedulerError(f"job store {self.label}: not open")
        r = await self._guard(
            self._batcher.submit(("claim", job_id, fire_key(fire), owner, lease, next_fire))
        )
        self._count_claim(r)
        return r  # type: ignore[no-any-return]

    async def _complete(
        self, job_id: str, fire: float, last_run: float, duration: float, error: bool
    ) -> None:
        if self._batcher is None:
            return
        await self._guard(
            self._batcher.submit(("complete", job_id, fire_key(fire), last_run, duration, error))
        )
