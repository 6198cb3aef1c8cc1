"""The HTTP client's opt-in response cache (``cache=ResponseCacheConfig(...)``): what
may be cached and for how long, and the store of responses by request key (the
responses themselves are ``_response._StoredBody``)."""

from __future__ import annotations

import email.utils
import hashlib
import json as _json
import time
from typing import Any

from .._cache import TTLCache
from .._core import ConfigError
from ._config import Prepared, ResponseCacheConfig
from ._response import ClientResponse, _Snapshot, _StoredBody

# directives to caches, not content negotiation: left out of the cache key, so that
# `Cache-Control: no-cache` refreshes the entry that plain requests use
_DIRECTIVE_HEADERS = frozenset({"cache-control", "pragma"})


def _directives(values: list[str]) -> dict[str, str]:
    d: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            name, _, arg = part.partition("=")
            name = name.strip().lower()
            if name:
                d.setdefault(name, arg.strip().strip('"'))
    return d


def _delta_seconds(v: str | None) -> int | None:
    if v is None or not v.strip().isdigit():
        return None
    return int(v.strip())


def _http_date(v: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(v).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# (key, ttl override for this request, refresh: skip the lookup and in-flight sharing)
_CachePlan = tuple[bytes, float | None, bool]


class _ResponseStore(TTLCache):
    """A client's cached responses (``_Snapshot``) and the GETs in flight for them,
    shared per event loop and, for the blocking twins, across threads (see
    ``TTLCache``). Keys are SHA-256 digests: no URL, header or token is kept in clear.
    Requests in flight during ``clear()`` store nothing."""

    def __init__(self, config: ResponseCacheConfig, jar: bool) -> None:
        config._check()  # the dataclass may have been edited since it was built
        super().__init__(config.maxsize)
        # the client's cookie jar adds cookies that the key cannot see
        self.jar = jar
        self.ttl = float(config.ttl_seconds)
        st = config.cacheable_statuses
        self.statuses = None if st is None else frozenset(st)
        self.methods = frozenset(m.upper() for m in config.methods)
        self.respect = config.respect_cache_control

    def plan(self, prepared: Prepared, ttl: float | None) -> _CachePlan | None:
        method, url, hdrs, body = prepared[:4]
        if method not in self.methods:
            if ttl is not None:
                raise ConfigError(f"cache_ttl: {method} responses are not cached")
            return None
        pairs = []
        cc: list[str] = []
        for k, v in hdrs:
            lk = k.lower()
            if lk in _DIRECTIVE_HEADERS:
                cc.append(v)  # Pragma's one directive is no-cache
            else:
                pairs.append((lk, v))
        req = _directives(cc)
        if "no-store" in req:
            return None
        refresh = "no-cache" in req or req.get("max-age") == "0"
        pairs.sort(key=lambda kv: kv[0])  # stable: repeated headers keep their order
        h = hashlib.sha256(_json.dumps([method, url, pairs]).encode())
        if body:
            h.update(b"\0" + body)
        return (h.digest(), ttl, refresh)

    def lifetime(self, snap: _Snapshot, ttl: float | None) -> float:
        """Seconds ``snap`` may be served from the cache (0: not stored)."""
        life = self.ttl if ttl is None else ttl
        if life <= 0:
            return 0.0
        if self.statuses is None:
            if not 200 <= snap.status < 300:
                return 0.0
        elif snap.status not in self.statuses:
            return 0.0
        if not self.respect:
            return life
        cc = _directives(snap.values("cache-control"))
        if "no-store" in cc or "no-cache" in cc:
            return 0.0
        vary = {v.strip().lower() for value in snap.values("vary") for v in value.split(",")}
        if "*" in vary or (self.jar and "cookie" in vary):
            return 0.0
        age = _delta_seconds(next(iter(snap.values("age")), None)) or 0
        if "max-age" in cc:
            max_age = _delta_seconds(cc["max-age"])
            if max_age is None:  # invalid: stale at once
                return 0.0
            return max(0.0, min(life, max_age - age))
        expires = snap.values("expires")
        if expires:
            when = _http_date(expires[0])
            if when is None:  # invalid: already expired
                return 0.0
            dates = snap.values("date")
            date = _http_date(dates[0]) if dates else None
            return max(0.0, min(life, when - (time.time() if date is None else date) - age))
        return life

    def info(self) -> dict[str, Any]:
        with self.lock:
            self.purge()
            return {
                "hits": self.hits,
                "misses": self.misses,
                "shared": self.shared,
                "size": len(self.entries),
                "maxsize": self.maxsize,
                "ttl_seconds": self.ttl,
                "in_flight": self.in_flight(),
            }


def _stored_response(snap: _Snapshot, method: str, from_cache: bool) -> ClientResponse:
    return ClientResponse(_StoredBody(snap, from_cache), method)
