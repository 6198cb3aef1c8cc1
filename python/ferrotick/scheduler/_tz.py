"""Time zones: one database for Rust and Python.

ferrotick reads the IANA time zone database the way Python's ``zoneinfo`` does —
the TZif files under ``zoneinfo.TZPATH`` (Debian's ``tzdata`` package puts them in
``/usr/share/zoneinfo``), falling back to the ``tzdata`` PyPI package — and hands
the very same bytes to Rust. Datetimes returned to Python carry the matching
``zoneinfo.ZoneInfo``, so both sides agree on every offset.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import zoneinfo
from typing import Any

from .. import _core
from .._core import ConfigError


def _tzif_bytes(key: str) -> bytes:
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ConfigError(f"timezone: {key!r} is not a time zone name")
    for base in zoneinfo.TZPATH:
        path = os.path.join(base, key)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            if data[:4] == b"TZif":
                return data
    try:
        import importlib.resources as res

        package, _, name = ("tzdata.zoneinfo/" + key).rpartition("/")
        return res.files(package.replace("/", ".")).joinpath(name).read_bytes()
    except Exception:
        raise ConfigError(f"timezone: unknown time zone {key!r}") from None


@functools.lru_cache(maxsize=256)
def _zone_for_key(key: str) -> tuple[zoneinfo.ZoneInfo, Any]:
    data = _tzif_bytes(key)
    try:
        info = zoneinfo.ZoneInfo(key)
    except Exception:
        raise ConfigError(f"timezone: unknown time zone {key!r}") from None
    return info, _core.Zone(key, data)


def _local_key() -> str | None:
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        for base in zoneinfo.TZPATH:
            prefix = os.path.realpath(base) + os.sep
            if target.startswith(prefix):
                return target[len(prefix) :]
    except OSError:
        pass
    return None


def get_zone(tz: Any = None) -> tuple[_dt.tzinfo, Any]:
    """(Python tzinfo, Rust zone) for a name, a ZoneInfo, ``datetime.timezone``
    (UTC or a fixed offset), or None (the system's local zone, else UTC)."""
    if tz is None:
        key = _local_key()
        if key:
            try:
                return _zone_for_key(key)
            except ConfigError:
                pass
        return _dt.timezone.utc, _core.Zone.utc()
    if isinstance(tz, str):
        if tz.upper() in ("UTC", "Z", "ETC/UTC"):
            return _dt.timezone.utc, _core.Zone.utc()
        return _zone_for_key(tz)
    if isinstance(tz, zoneinfo.ZoneInfo):
        if tz.key is None:
            raise ConfigError("timezone: a ZoneInfo built from a file has no key; pass its name")
        return _zone_for_key(tz.key)
    if isinstance(tz, _dt.timezone):
        off = tz.utcoffset(None)
        if off == _dt.timedelta(0):
            return _dt.timezone.utc, _core.Zone.utc()
        return tz, _core.Zone.fixed(int(off.total_seconds()))
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)  # pytz / dateutil style
    if isinstance(key, str):
        return _zone_for_key(key)
    raise ConfigError(f"timezone: unsupported time zone object {tz!r}")


def to_unix(value: _dt.datetime, name: str = "datetime") -> float:
    if not isinstance(value, _dt.datetime):
        raise TypeError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ConfigError(f"{name}: naive datetime {value!r}; pass a timezone-aware datetime")
    return value.timestamp()


def from_unix(t: float, tzinfo: _dt.tzinfo) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t, tz=tzinfo)
