"""One aggregated view of the metrics of several worker processes (gunicorn,
``uvicorn --workers``, multiprocessing), with files that never grow.

Writing: each process runs a ``MultiProcessWriter(directory)``, a daemon thread that
writes the process's ``registry.snapshot()`` as JSON to
``<directory>/ferrotick-<pid>.json`` every ``interval`` seconds (5 by default), when
it starts and at exit. Each write goes to a temporary file that ``os.replace``
moves over the previous one: one file per live process, overwritten, never
appended, and a reader never sees half a file.

Reading: ``MultiProcessCollector(directory)`` (or ``generate_aggregated(directory)``)
reads the files of live processes and renders one Prometheus text:

* counters: summed across processes, per label set;
* histograms: bucket counts, ``_count`` and ``_sum`` summed per label set (bucket
  layouts that differ between processes are merged on the union of the bounds);
* summaries: ``_count`` and ``_sum`` summed (quantiles cannot be combined across
  processes and are not exposed in the aggregated view);
* gauges: one sample per process with a ``pid`` label — prometheus_client's
  ``multiprocess_mode="all"``, the default. A ``Gauge(...,
  multiprocess_mode="sum" | "max" | "min" | "mostrecent")`` (or the ``live``
  variants, the same thing here) is combined into one sample without ``pid``;
* ``ferrotick_metric_series_dropped_total{metric}``: summed.

Dead processes: a file whose pid no longer runs (``os.kill(pid, 0)``; on Linux a
zombie counts as dead, and the process start time stored in the file tells a reused
pid from the writer) is deleted by the next collection. Before that, its counters,
histograms and summaries are folded into ``<directory>/ferrotick-archive.json``, so
that aggregated counters never go backwards when a worker is recycled (Prometheus
would read that as a counter reset and over-count ``rate()``); its gauges are
dropped. The archive has one entry per label set, so it does not grow with the
number of processes that ever ran. ``archive_dead=False`` drops dead processes'
values instead. ``mark_process_dead(pid, directory)`` folds a file at once (for
gunicorn's ``child_exit`` hook).

Fork: a writer running when its process forks (gunicorn ``--preload``) restarts in
the child, which writes its own file; the values the child inherited from its parent
are subtracted from what it writes, so they are not counted twice.

Limits: the view lags each process by up to ``interval`` (a collector first flushes
the writers of its own process); only the metrics of the registry are aggregated,
not collector callbacks nor the runtime's figures; the directory must be shared by
processes of one host and pid namespace. A collection holds an exclusive ``flock``
on ``<directory>/.ferrotick.lock``.

```python
# in each worker (for example in a gunicorn post_fork hook or the app factory)
from ferrotick.monitor.multiprocess import MultiProcessWriter, MultiProcessCollector
MultiProcessWriter("/run/myservice-metrics")
# where /metrics is served
app.include_router(metrics_router(registry=MultiProcessCollector("/run/myservice-metrics")))
```
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from .._core import ConfigError
from .._validate import is_number
from ._metrics import REGISTRY, CollectorRegistry

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ARCHIVE_NAME",
    "MultiProcessCollector",
    "MultiProcessWriter",
    "generate_aggregated",
    "mark_process_dead",
]

logger = logging.getLogger("ferrotick.monitor")

ENV_DIR = "FERROTICK_MULTIPROC_DIR"
ARCHIVE_NAME = "ferrotick-archive.json"
LOCK_NAME = ".ferrotick.lock"
FORMAT_VERSION = 1
_FILE_RE = re.compile(r"ferrotick-(\d+)\.json")
_TMP_RE = re.compile(r"\.ferrotick-(\d+)\.json\.tmp")

_GAUGE_MODES = {
    "all": "all",
    "liveall": "all",
    "sum": "sum",
    "livesum": "sum",
    "max": "max",
    "livemax": "max",
    "min": "min",
    "livemin": "min",
    "mostrecent": "mostrecent",
    "livemostrecent": "mostrecent",
}


def _directory(directory: str | os.PathLike[str] | None) -> str:
    d = os.fspath(directory) if directory is not None else os.environ.get(ENV_DIR, "")
    if not d:
        raise ConfigError(f"directory: pass a directory or set {ENV_DIR}")
    return os.path.abspath(d)


# -- processes --------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, or None where unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2 :].split()
        return fields[0].decode(), int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def _start_time(pid: int) -> int | None:
    st = _proc_stat(pid)
    return st[1] if st is not None else None


def _pid_alive(pid: int, start_time: Any = None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    except OSError:
        return False
    st = _proc_stat(pid)
    if st is not None:
        state, started = st
        if state in ("Z", "X"):
            return False
        if isinstance(start_time, int) and started != start_time:
            return False  # the pid was reused by another process
    return True


# -- files ------------------------------------------------------------------------------


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version", 0) > FORMAT_VERSION:
        return None
    return data


def _atomic_write(path: str, payload: dict[str, Any]) -> None:
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.tmp")
    data = json.dumps(payload, separators=(",", ":")).encode()
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- what a process writes ------------------------------------------------------------------


def _skey(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(labels.items())


def _collect(registry: Any) -> dict[str, Any]:
    """The registry's metrics in the file format: per metric its type, help, label
    names, dropped series, gauge mode and series (value, or count/sum/buckets)."""
    snap = registry.snapshot()
    objs = getattr(registry, "_metrics", {})
    metrics: dict[str, Any] = {}
    for key, md in snap.items():
        kind = md["type"]
        name = key[: -len("_total")] if kind == "counter" and key.endswith("_total") else key
        entry: dict[str, Any] = {
            "type": kind,
            "help": md.get("help", ""),
            "labelnames": list(md.get("labelnames", ())),
            "dropped": int(md.get("dropped_series", 0)),
            "series": [],
        }
        if kind == "gauge":
            entry["mode"] = getattr(objs.get(name), "multiprocess_mode", "all")
        for s in md["series"]:
            labels = {str(k): str(v) for k, v in s["labels"].items()}
            if kind in ("counter", "gauge"):
                entry["series"].append({"labels": labels, "value": float(s["value"])})
            else:
                e: dict[str, Any] = {
                    "labels": labels,
                    "count": int(s["count"]),
                    "sum": float(s["sum"]),
                }
                if kind == "histogram":
                    e["buckets"] = [[str(le), int(c)] for le, c in s["buckets"]]
                entry["series"].append(e)
        metrics[name] = entry
    return metrics


def _subtract(metrics: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` less what a forked child inherited (``baseline``). A series that
    went below its baseline was reset in the child and is written as it is."""
    out: dict[str, Any] = {}
    for name, md in metrics.items():
        base = baseline.get(name)
        if base is None or base["type"] != md["type"] or md["type"] == "gauge":
            out[name] = md
            continue
        base_series = {_skey(s["labels"]): s for s in base["series"]}
        series = []
        for s in md["series"]:
            b = base_series.get(_skey(s["labels"]))
            if b is None:
                series.append(s)
            elif md["type"] == "counter":
                series.append(
                    s if s["value"] < b["value"] else {**s, "value": s["value"] - b["value"]}
                )
            elif s["count"] < b["count"]:
                series.append(s)
            else:
                e = {**s, "count": s["count"] - b["count"], "sum": s["sum"] - b["sum"]}
                if "buckets" in s:
                    bb = dict((le, c) for le, c in b.get("buckets", ()))
                    e["buckets"] = [[le, c - bb.get(le, 0)] for le, c in s["buckets"]]
                series.append(e)
        out[name] = {
            **md,
            "dropped": max(md.get("dropped", 0) - base.get("dropped", 0), 0),
            "series": series,
        }
    return out


_WRITERS: weakref.WeakSet[MultiProcessWriter] = weakref.WeakSet()


class MultiProcessWriter:
    """Writes this process's metrics to ``<directory>/ferrotick-<pid>.json`` from a
    daemon thread every ``interval`` seconds, at start and at exit (see the module
    doc). ``directory`` defaults to ``$FERROTICK_MULTIPROC_DIR``.

    ``stop()`` stops the thread (the file stays and is folded into the archive once
    the process is gone); ``close(remove=True)`` also deletes the file and its values
    leave the aggregated view. Usable as a context manager."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        interval: float = 5.0,
        registry: CollectorRegistry = REGISTRY,
        *,
        start: bool = True,
    ) -> None:
        if not is_number(interval, gt=0):
            raise ConfigError(f"interval: must be a positive number of seconds, got {interval!r}")
        if registry is None or not hasattr(registry, "snapshot"):
            raise ConfigError("registry: expected a CollectorRegistry")
        self.directory = _directory(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.interval = float(interval)
        self.registry = registry
        self.writes = 0
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._baseline: dict[str, Any] | None = None
        self._fork_baseline: dict[str, Any] | None = None
        self._start_times: dict[int, int | None] = {}
        self._closed = False
        _WRITERS.add(self)
        atexit.register(self._at_exit)
        if start:
            self.start()

    @property
    def path(self) -> str:
        """This process's file (the pid is read at each call: it changes in a child)."""
        return os.path.join(self.directory, f"ferrotick-{os.getpid()}.json")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def write(self) -> str:
        """Writes the file now; returns its path."""
        pid = os.getpid()
        if pid not in self._start_times:
            self._start_times[pid] = _start_time(pid)
        metrics = _collect(self.registry)
        if self._baseline is not None:
            metrics = _subtract(metrics, self._baseline)
        payload = {
            "version": FORMAT_VERSION,
            "pid": pid,
            "start_time": self._start_times[pid],
            "written": time.time(),
            "metrics": metrics,
        }
        path = self.path
        with self._write_lock:
            _atomic_write(path, payload)
            self.writes += 1
        return path

    def start(self) -> None:
        """Writes the file and starts the thread (no-op when it runs)."""
        if self._closed:
            raise ConfigError("MultiProcessWriter: closed")
        if self.running:
            return
        self.write()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="ferrotick-multiprocess-writer", daemon=True
        )
        self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            try:
                self.write()
            except Exception:  # a failed write must not kill the writer
                logger.warning("multiprocess: writing %s failed", self.path, exc_info=True)

    def stop(self) -> None:
        """Stops the thread, after one last write."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(self.interval, 1.0) + 5.0)
        if thread is not None:
            with contextlib.suppress(Exception):
                self.write()

    def close(self, remove: bool = False) -> None:
        """Stops the thread; with ``remove``, deletes this process's file."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        atexit.unregister(self._at_exit)
        _WRITERS.discard(self)
        if remove:
            _unlink(self.path)

    def _at_exit(self) -> None:
        if not self._closed and self.running:
            self._stop.set()
            with contextlib.suppress(Exception):
                self.write()

    def __enter__(self) -> MultiProcessWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # fork handling (see _before_fork below)
    def _reset_after_fork(self) -> None:
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._baseline = self._fork_baseline
        self._fork_baseline = None


def _before_fork() -> None:
    for w in list(_WRITERS):
        w._fork_baseline = None
        if w.running:
            try:
                w._fork_baseline = _collect(w.registry)
            except Exception:
                logger.warning("multiprocess: snapshot before fork failed", exc_info=True)


def _after_fork_in_parent() -> None:
    for w in list(_WRITERS):
        w._fork_baseline = None


def _after_fork_in_child() -> None:
    for w in list(_WRITERS):
        if w._fork_baseline is None:
            # not running in the parent: stays stopped
            w._thread = None
            continue
        w._reset_after_fork()
        try:
            w.start()
        except Exception:
            logger.warning("multiprocess: restarting the writer after fork failed", exc_info=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )


# -- reading and aggregating ----------------------------------------------------------------


def _empty_archive() -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "pid": None, "archive": True, "metrics": {}}


def _fold(archive: dict[str, Any], data: dict[str, Any]) -> None:
    """Adds the counters, histograms and summaries of a dead process to the archive."""
    metrics = archive.setdefault("metrics", {})
    for name, md in (data.get("metrics") or {}).items():
        kind = md.get("type")
        if kind not in ("counter", "histogram", "summary"):
            continue
        a = metrics.get(name)
        if a is None:
            a = metrics[name] = {
                "type": kind,
                "help": md.get("help", ""),
                "labelnames": md.get("labelnames", []),
                "dropped": 0,
                "series": [],
            }
        elif a["type"] != kind:
            logger.warning("multiprocess: %s is a %s and a %s; not archived", name, a["type"], kind)
            continue
        a["dropped"] = a.get("dropped", 0) + md.get("dropped", 0)
        index = {_skey(s["labels"]): s for s in a["series"]}
        for s in md.get("series", ()):
            t = index.get(_skey(s["labels"]))
            if t is None:
                t = json.loads(json.dumps(s))
                a["series"].append(t)
                index[_skey(s["labels"])] = t
            elif kind == "counter":
                t["value"] += s["value"]
            else:
                t["count"] += s["count"]
                t["sum"] += s["sum"]
                if kind == "histogram":
                    t["buckets"] = _merge_buckets([t["buckets"], s["buckets"]])


def _le(le: str) -> float:
    if le == "+Inf":
        return math.inf
    if le == "-Inf":
        return -math.inf
    return float(le)


def _merge_buckets(layouts: list[list[list[Any]]]) -> list[list[Any]]:
    """Sums cumulative bucket counts; where the layouts differ, each contributes at a
    bound the count of its largest bound not above it (exact for equal layouts)."""
    names: dict[float, str] = {}
    parsed = []
    for layout in layouts:
        pts = sorted((_le(le), c) for le, c in layout)
        for le, _ in layout:
            names.setdefault(_le(le), le)
        parsed.append(pts)
    out = []
    for bound in sorted(names):
        total = 0
        for pts in parsed:
            best = 0
            for le, c in pts:
                if le <= bound:
                    best = c
                else:
                    break
            total += best
        out.append([names[bound], total])
    return out


def _load(directory: str, archive_dead: bool) -> list[dict[str, Any]]:
    """The files of live processes, plus the archive; dead processes' files are
    folded into the archive (``archive_dead``) and deleted."""
    for w in list(_WRITERS):
        if w.directory == directory and w.running:
            try:
                w.write()
            except Exception:
                logger.warning("multiprocess: flushing %s failed", w.path, exc_info=True)
    archive_path = os.path.join(directory, ARCHIVE_NAME)
    entries: list[dict[str, Any]] = []
    with _locked(directory):
        dead: list[tuple[str, dict[str, Any] | None]] = []
        for fn in os.listdir(directory):
            m = _FILE_RE.fullmatch(fn)
            if m is not None:
                path = os.path.join(directory, fn)
                data = _read_json(path)
                start = data.get("start_time") if data is not None else None
                if _pid_alive(int(m.group(1)), start):
                    if data is not None:
                        entries.append(data)
                else:
                    dead.append((path, data))
                continue
            t = _TMP_RE.fullmatch(fn)
            if t is not None and not _pid_alive(int(t.group(1))):
                _unlink(os.path.join(directory, fn))
        if dead:
            if archive_dead and any(d is not None for _, d in dead):
                archive = _read_json(archive_path) or _empty_archive()
                for _, d in dead:
                    if d is not None:
                        _fold(archive, d)
                _atomic_write(archive_path, archive)
            for path, _ in dead:
                _unlink(path)
        archive = _read_json(archive_path)
    if archive is not None:
        entries.append(archive)
    return entries


def mark_process_dead(
    pid: int, directory: str | os.PathLike[str] | None = None, *, archive: bool = True
) -> bool:
    """Folds the file of ``pid`` (which must have exited) into the archive and
    deletes it; returns whether there was one. For gunicorn's ``child_exit`` hook:
    ``def child_exit(server, worker): mark_process_dead(worker.pid, DIR)``."""
    d = _directory(directory)
    path = os.path.join(d, f"ferrotick-{int(pid)}.json")
    with _locked(d):
        data = _read_json(path)
        if data is not None and archive:
            archive_path = os.path.join(d, ARCHIVE_NAME)
            arch = _read_json(archive_path) or _empty_archive()
            _fold(arch, data)
            _atomic_write(archive_path, arch)
        existed = os.path.exists(path)
        _unlink(path)
        _unlink(os.path.join(d, f".ferrotick-{int(pid)}.json.tmp"))
    return existed


def _aggregate(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:  # noqa: C901 (the merge rule of each metric kind and multiprocess mode, side by side as prometheus_client documents them)
    agg: dict[str, dict[str, Any]] = {}
    for entry in entries:
        pid = entry.get("pid")
        written = entry.get("written", 0.0)
        for name, md in (entry.get("metrics") or {}).items():
            kind = md.get("type")
            a = agg.get(name)
            if a is None:
                a = agg[name] = {
                    "type": kind,
                    "help": md.get("help", ""),
                    "labelnames": list(md.get("labelnames", [])),
                    "mode": _GAUGE_MODES.get(md.get("mode", "all"), "all"),
                    "dropped": 0,
                    "series": {},
                }
            elif a["type"] != kind:
                logger.warning(
                    "multiprocess: %s is a %s in one process and a %s in another; "
                    "the latter is left out",
                    name,
                    a["type"],
                    kind,
                )
                continue
            a["dropped"] += int(md.get("dropped", 0))
            series = a["series"]
            for s in md.get("series", ()):
                labels = dict(s["labels"])
                if kind == "counter":
                    key = _skey(labels)
                    prev = series.get(key)
                    series[key] = (labels, (prev[1] if prev else 0.0) + s["value"])
                elif kind == "gauge":
                    mode = a["mode"]
                    if mode == "all":
                        if pid is None:
                            continue
                        pid_label = "pid" if "pid" not in labels else "process_pid"
                        labels[pid_label] = str(pid)
                        series[_skey(labels)] = (labels, s["value"])
                        continue
                    key = _skey(labels)
                    prev = series.get(key)
                    v = s["value"]
                    if prev is None:
                        series[key] = (labels, v, written)
                    elif mode == "sum":
                        series[key] = (labels, prev[1] + v, written)
                    elif mode == "max":
                        series[key] = (labels, max(prev[1], v), written)
                    elif mode == "min":
                        series[key] = (labels, min(prev[1], v), written)
                    elif written >= prev[2]:  # mostrecent
                        series[key] = (labels, v, written)
                else:
                    key = _skey(labels)
                    prev = series.get(key)
                    if prev is None:
                        prev = series[key] = {
                            "labels": labels,
                            "count": 0,
                            "sum": 0.0,
                            "layouts": [],
                        }
                    prev["count"] += s["count"]
                    prev["sum"] += s["sum"]
                    if kind == "histogram":
                        prev["layouts"].append(s.get("buckets", []))
    return agg


def _families(agg: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    fams: list[dict[str, Any]] = []
    dropped: list[tuple[str, dict[str, str], float]] = []
    for name in sorted(agg):
        a = agg[name]
        kind = a["type"]
        samples: list[tuple[str, dict[str, str], float]] = []
        for s in a["series"].values():
            if kind == "counter":
                samples.append(("_total", s[0], s[1]))
            elif kind == "gauge":
                samples.append(("", s[0], s[1]))
            else:
                labels = s["labels"]
                if kind == "histogram":
                    for le, c in _merge_buckets(s["layouts"]):
                        samples.append(("_bucket", {**labels, "le": le}, float(c)))
                samples.append(("_count", labels, float(s["count"])))
                samples.append(("_sum", labels, s["sum"]))
        fams.append({"name": name, "type": kind, "help": a["help"], "samples": samples})
        if a["dropped"]:
            dropped.append(("_total", {"metric": name}, float(a["dropped"])))
    if dropped:
        fams.append(
            {
                "name": "ferrotick_metric_series_dropped",
                "type": "counter",
                "help": "Label sets not recorded because the metric reached its series cap.",
                "samples": dropped,
            }
        )
    return fams


class MultiProcessCollector:
    """The aggregated view of the processes writing to ``directory`` (see the module
    doc). ``directory`` defaults to ``$FERROTICK_MULTIPROC_DIR``.

    It is a collector (``collect()`` returns families), so
    ``MultiProcessCollector(path, registry=CollectorRegistry())`` works as in
    prometheus_client; it also renders by itself: ``generate_latest(collector)``,
    ``collector.generate(openmetrics=True)``, ``collector.snapshot()``, and it can be
    given to ``ferrotick.fastapi.metrics_router(registry=...)``. Do not register it
    on a registry holding this process's own metrics: the names would be exposed
    twice."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        registry: CollectorRegistry | None = None,
        *,
        archive_dead: bool = True,
    ) -> None:
        self.directory = _directory(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.archive_dead = archive_dead
        self._render_registry: CollectorRegistry | None = None
        if registry is not None:
            registry.register(self)

    def aggregate(self) -> dict[str, dict[str, Any]]:
        return _aggregate(_load(self.directory, self.archive_dead))

    def collect(self) -> list[dict[str, Any]]:
        return _families(self.aggregate())

    def generate(self, openmetrics: bool = False) -> bytes:
        if self._render_registry is None:
            reg = CollectorRegistry()
            reg.register(self)
            self._render_registry = reg
        return self._render_registry.generate(openmetrics=openmetrics)

    def snapshot(self) -> dict[str, Any]:
        """The aggregated metrics, shaped like ``CollectorRegistry.snapshot()``
        (without percentiles)."""
        out: dict[str, Any] = {}
        for name, a in sorted(self.aggregate().items()):
            kind = a["type"]
            series = []
            for s in a["series"].values():
                if kind in ("counter", "gauge"):
                    series.append({"labels": s[0], "value": s[1]})
                else:
                    e: dict[str, Any] = {
                        "labels": s["labels"],
                        "count": s["count"],
                        "sum": s["sum"],
                    }
                    if kind == "histogram":
                        e["buckets"] = [(le, c) for le, c in _merge_buckets(s["layouts"])]
                    series.append(e)
            out[f"{name}_total" if kind == "counter" else name] = {
                "type": kind,
                "help": a["help"],
                "labelnames": a["labelnames"]
                + (["pid"] if kind == "gauge" and a["mode"] == "all" else []),
                "series": series,
                "dropped_series": a["dropped"],
            }
        return out

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        from ._parse import sample_value

        return sample_value(self.generate().decode(), name, labels or {})


def generate_aggregated(
    directory: str | os.PathLike[str] | None = None, openmetrics: bool = False
) -> bytes:
    """The Prometheus text (or OpenMetrics) of the processes writing to ``directory``."""
    return MultiProcessCollector(directory).generate(openmetrics=openmetrics)
