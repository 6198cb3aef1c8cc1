"""Helpers shared by the simulated exchange's tests: signing and small clients."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

import aiohttp

from ferrotick.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET


def sign(query: str, secret: str = DEFAULT_API_SECRET) -> str:
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def signed_query(params: dict[str, Any], ts: int, secret: str = DEFAULT_API_SECRET) -> str:
    q = urlencode({**params, "timestamp": ts})
    return f"{q}&signature={sign(q, secret)}"


async def call(
    s: aiohttp.ClientSession,
    ex: Any,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    signed: bool = False,
    key: str | None = DEFAULT_API_KEY,
    ts: int | None = None,
) -> tuple[int, Any, Any]:
    """One request; returns (status, JSON body, headers)."""
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    if signed:
        query = signed_query(params or {}, ex.server_time() if ts is None else ts)
    else:
        query = urlencode(params or {})
    url = f"{ex.base_url}{path}" + (f"?{query}" if query else "")
    async with s.request(method, url, headers=headers) as r:
        body = await r.json(content_type=None)
        return r.status, body, r.headers
