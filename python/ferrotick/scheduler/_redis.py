"""RedisJobStore: jobs in Redis, shared by processes on any number of hosts."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

from .. import _core
from .._core import ConfigError, SchedulerError
from .._validate import seconds
from ._stores import Claim, ClaimResult, _BatchedJobStore, _Batcher, _state_from

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


def redact_url(url: str) -> str:
    """The URL without its user info (a password) or query string."""
    try:
        scheme = urllib.parse.urlsplit(url).scheme
    except ValueError:
        return "<unparseable URL>"
    if scheme not in ("redis", "rediss", "unix"):
        return "<unparseable URL>"
    return _core.redact_url(url)


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


class RedisJobStore(_BatchedJobStore):
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
                out.append(Claim(ClaimResult(int(code)), holder or "", lost))
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

    async def add(
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

    async def replace(
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

    async def update(self, job_id: str, **fields: Any) -> None:
        mapping = {}
        for k, v in fields.items():
            if k == "paused":
                mapping[k] = "1" if v else "0"
            else:
                mapping[k] = "" if v is None else repr(float(v))
        await self._guard(self._require().hset(self._k_state(job_id), mapping=mapping))

    async def remove(self, job_id: str) -> None:
        pipe = self._require().pipeline(transaction=True)
        pipe.hdel(self._k_jobs(), job_id)
        pipe.delete(self._k_state(job_id), self._k_inflight(job_id))
        await self._guard(pipe.execute())
