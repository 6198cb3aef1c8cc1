"""The response of the HTTP client: ``ClientResponse`` and its ``Headers``, over the
Rust client's response or over a body held in memory (``_StoredBody``, what the
response cache keeps)."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import Any

from .. import _core
from .._core import HTTPStatusError


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued response headers."""

    __slots__ = ("_pairs", "_map")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        m: dict[str, str] = {}
        for k, v in pairs:
            lk = k.lower()
            if lk not in m:
                m[lk] = v
        self._map = m

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def getall(self, key: str) -> list[str]:
        lk = key.lower()
        return [v for k, v in self._pairs if k.lower() == lk]

    def items_all(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


_safe_url = _core.redact_url


class ClientResponse:
    """A response: ``status``, ``headers``, ``url``, ``await read()/text()/json()``,
    ``async for chunk in resp``, ``raise_for_status()``, ``release()``."""

    __slots__ = ("_r", "_headers", "method")

    def __init__(self, r: Any, method: str) -> None:
        self._r = r
        self._headers: Headers | None = None
        self.method = method

    @property
    def status(self) -> int:
        return self._r.status

    @property
    def reason(self) -> str:
        return self._r.reason

    @property
    def url(self) -> str:
        return self._r.url

    @property
    def version(self) -> str:
        return self._r.version

    @property
    def attempts(self) -> int:
        return self._r.attempts

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self._r.raw_headers)
        return self._headers

    @property
    def ok(self) -> bool:
        return self._r.status < 400

    @property
    def from_cache(self) -> bool:
        """True when this call sent no request of its own: the response came from the
        client's response cache, or from an identical GET already in flight."""
        return isinstance(self._r, _StoredBody) and self._r.from_cache

    def read(self) -> Any:
        return self._r.read()

    def json(self, *, loads: Any = None) -> Any:
        if loads is not None:
            return self._json_with(loads)
        return self._r.json()

    async def _json_with(self, loads: Any) -> Any:
        return loads(await self._r.read())

    async def text(self, encoding: str | None = None, errors: str = "strict") -> str:
        data = await self._r.read()
        if encoding is None:
            ctype = self.headers.get("content-type", "")
            encoding = "utf-8"
            for part in ctype.split(";")[1:]:
                k, _, v = part.strip().partition("=")
                if k.lower() == "charset" and v:
                    encoding = v.strip("\"'")
        return data.decode(encoding, errors)

    def __aiter__(self) -> ClientResponse:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._r.chunk()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def iter_chunked(self, n: int = 65536) -> Any:
        async for chunk in self:
            for i in range(0, len(chunk), n):
                yield chunk[i : i + n]

    def raise_for_status(self) -> None:
        if self._r.status >= 400:
            err = HTTPStatusError(
                f"{self._r.status} {self._r.reason} for {self.method} {_safe_url(self._r.url)}"
            )
            err.status = self._r.status
            err.headers = self.headers
            err.body = None
            # Only an eagerly read body is attached. Reading a streamed body here
            # would start a background read that holds the connection slot until
            # the whole (possibly endless) stream has arrived.
            if not self._r.is_streaming:
                try:
                    err.body = self._r.read().result()
                except Exception:
                    err.body = None
            raise err

    def release(self) -> None:
        self._r.release()

    def close(self) -> None:
        self._r.release()

    def __repr__(self) -> str:
        return f"<ClientResponse [{self.status} {self.reason}] {_safe_url(self.url)}>"


class _Snapshot:
    """A response as stored: read whole, never mutated, shared by all its readers."""

    __slots__ = ("status", "reason", "url", "version", "attempts", "headers", "body")

    def __init__(self, r: Any, body: bytes) -> None:
        self.status: int = r.status
        self.reason: str = r.reason
        self.url: str = r.url
        self.version: str = r.version
        self.attempts: int = r.attempts
        self.headers: tuple[tuple[str, str], ...] = tuple(r.raw_headers)
        self.body = body

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


class _Ready:
    """An already-complete result: awaitable, or ``.result()`` in blocking code (what
    ``_core.Response.read()`` returns for a body that has been read)."""

    __slots__ = ("_value", "_exc")

    def __init__(self, value: Any = None, exc: BaseException | None = None) -> None:
        self._value = value
        self._exc = exc

    def __await__(self) -> Generator[Any, None, Any]:
        yield from ()
        return self.result()

    def done(self) -> bool:
        return True

    def exception(self) -> BaseException | None:
        return self._exc

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._value


class _StoredBody:
    """Stands in for ``_core.Response`` over a snapshot. Every caller gets its own: a
    Rust Response's eager body can be read more than once, but iterating it hands the
    bytes over (``chunk()`` takes them), so one Response cannot serve many readers."""

    __slots__ = ("_s", "_iterated", "from_cache")

    is_streaming = False

    def __init__(self, snap: _Snapshot, from_cache: bool) -> None:
        self._s = snap
        self._iterated = False
        self.from_cache = from_cache

    @property
    def status(self) -> int:
        return self._s.status

    @property
    def reason(self) -> str:
        return self._s.reason

    @property
    def url(self) -> str:
        return self._s.url

    @property
    def version(self) -> str:
        return self._s.version

    @property
    def attempts(self) -> int:
        return self._s.attempts

    @property
    def raw_headers(self) -> list[tuple[str, str]]:
        return list(self._s.headers)

    def read(self) -> _Ready:
        return _Ready(self._s.body)

    def json(self) -> _Ready:
        # decoded per call: callers never share (and mutate) one parsed document
        try:
            return _Ready(_core.json_loads(self._s.body))
        except ValueError as e:
            return _Ready(exc=e)

    def chunk(self) -> _Ready:
        if self._iterated:
            return _Ready(b"")
        self._iterated = True
        return _Ready(self._s.body)

    def release(self) -> None:
        pass
