"""How a job of a persistent store is written down: the callable by reference
(``"module:qualname"``, checked by importing it back), ``args`` and ``kwargs``
pickled (protocol 4, base64), the trigger and the job options as JSON; and whether
two such definitions describe the same job."""

from __future__ import annotations

import base64
import datetime as _dt
import importlib
import inspect
import json
import pickle
import zoneinfo
from collections.abc import Callable
from typing import Any

from .. import _core
from .._core import ConfigError
from ._tz import get_zone
from .triggers import BaseTrigger, CronTrigger, DateTrigger, IntervalTrigger


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
