"""The processor's real-time mode: live klines → incremental resampling →
incremental analyzers → signals → sinks."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

import numpy as np

from .. import _core
from . import _timeframe as tfm
from ._analyzers import AnalysisResult
from ._data import COLUMNS, MarketData

log = logging.getLogger("ferrotick.pipeline")

# Calendar timeframes get bucket edges this far past the last bar.
_EDGE_HORIZON_MS = 5 * 366 * 86_400_000


class _SymbolState:
    """One symbol's resampler, analysis results and the last bar fed."""

    def __init__(self, proc: Any, symbol: str, frames: dict[str, MarketData]) -> None:
        source = proc._source
        width = source.width or 60_000
        rules: list[Any] = []
        for tf in proc.timeframes:
            t = tfm.parse(tf)
            if t.calendar(None) or t.width is None:
                start = int(frames[tf].open_time[0]) if len(frames[tf]) else 0
                rules.append(tfm.edges(t, start, start + _EDGE_HORIZON_MS))
            else:
                rules.append((t.width, t.origin))
        self.symbol = symbol
        self.width = width
        self.resampler = _core.Resampler(width, rules)
        # the analyses continue from closed bars only
        self.closed = {tf: _closed(md) for tf, md in frames.items()}
        self.last_analyzed = {
            tf: int(md.open_time[-1]) if len(md) else -(2**62) for tf, md in self.closed.items()
        }
        self.results: dict[str, AnalysisResult] = {}
        self.next_open: int | None = None

    def seed(self, base: MarketData) -> None:
        """Feeds the resampler the closed base bars of every bucket still open."""
        base = _closed(base)
        if not len(base):
            return
        # the first bar of the earliest bucket not yet analysed: the close of the
        # last analysed bar of each timeframe (all of history for an empty one)
        starts = [
            int(md.close_time[-1]) if len(md) else int(base.open_time[0])
            for md in self.closed.values()
        ]
        i = int(np.searchsorted(base.open_time, min(starts), side="left"))
        sl = slice(i, None)
        if len(base.open_time[sl]):
            self.resampler.update_many(
                base.open_time[sl], *(np.ascontiguousarray(getattr(base, c)[sl]) for c in COLUMNS)
            )
            self.next_open = int(base.open_time[-1]) + self.width
        for k in range(len(self.closed)):
            self.resampler.drain(k)


def _closed(md: MarketData) -> MarketData:
    return md._slice(slice(0, len(md) - 1), False) if md.partial_last and len(md) else md


class RealTimeStream:
    """Created by ``AsyncDataProcessor.start_real_time_stream``."""

    def __init__(
        self,
        proc: Any,
        client: Any,
        symbols: list[str],
        buffer: int,
        overflow: str,
        queue_size: int,
    ) -> None:
        self.proc = proc
        self.client = client
        self.symbols = symbols
        self.buffer = buffer
        self.overflow = overflow
        self.queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(queue_size)
        self.states: dict[str, _SymbolState] = {}
        self.counts = collections.Counter[str]()
        self.latencies: collections.deque[float] = collections.deque(maxlen=100_000)
        self.last_message = time.monotonic()
        self._sub: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._by_stream: dict[str, str] = {}

    async def start(self) -> None:
        proc = self.proc
        for sym in self.symbols:
            st = proc.state[sym]
            frames = st["frames"]
            s = _SymbolState(proc, sym, frames)
            # re-run the analyses over closed bars only, so that updates continue
            # from a state that no partial bar has touched
            closed_results = await proc._analyze_local(s.closed)
            s.results = closed_results
            base = st.get("base") or frames.get(proc.interval)
            if base is None:
                base = await proc.fetch(sym)
            s.seed(base)
            self.states[sym] = s
        names = [f"{s.lower()}@kline_{self.proc.interval}" for s in self.symbols]
        self._by_stream = {n: s for n, s in zip(names, self.symbols, strict=True)}
        self._sub = self.client.stream(names, buffer=self.buffer, overflow=self.overflow)
        self._tasks = [
            asyncio.ensure_future(self._read()),
            asyncio.ensure_future(self._write()),
        ]

    def healthy(self, silence: float = 60.0) -> bool:
        return all(not t.done() for t in self._tasks) and (
            time.monotonic() - self.last_message < silence
        )

    def stats(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def q(p: float) -> float | None:
            return lat[min(int(p * len(lat)), len(lat) - 1)] if lat else None

        sub = self._sub.stats() if self._sub is not None else {}
        return {
            **dict(self.counts),
            "queue": self.queue.qsize(),
            "latency_p50": q(0.5),
            "latency_p99": q(0.99),
            "subscription": sub,
        }

    async def _read(self) -> None:
        assert self._sub is not None
        async for batch in self._sub.batches():
            t_recv = time.perf_counter()
            self.last_message = time.monotonic()
            for msg in batch:
                try:
                    await self._on_message(msg, t_recv)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self.counts["errors"] += 1
                    self.proc.metrics.error("stream", e)
                    log.warning("stream: message skipped: %s: %s", type(e).__name__, e)

    async def _on_message(self, msg: Any, t_recv: float) -> None:
        self.counts["messages"] += 1
        data = msg.get("data", msg) if isinstance(msg, dict) else None
        sym = self._by_stream.get(msg.get("stream", "")) if isinstance(msg, dict) else None
        if not isinstance(data, dict) or sym is None or "k" not in data:
            self.counts["ignored"] += 1
            return
        k = data["k"]
        if not k.get("x"):
            self.counts["ticks"] += 1
            return
        st = self.states[sym]
        t = int(k["t"])
        if st.next_open is not None and t > st.next_open:
            await self._backfill(st, st.next_open, t - 1)
        self._feed(st, t, k)
        signals = await self._advance(st)
        if signals:
            await self.queue.put(signals)
            self.counts["signals"] += len(signals)
        dt = time.perf_counter() - t_recv
        self.latencies.append(dt)
        self.proc.metrics.duration("stream_update", dt)

    def _feed(self, st: _SymbolState, t: int, k: dict[str, Any]) -> None:
        before = st.resampler.dropped
        st.resampler.update(
            t, float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"])
        )
        if st.resampler.dropped != before:
            self.counts["duplicates"] += 1
            return
        st.next_open = t + st.width
        self.counts["bars"] += 1

    async def _backfill(self, st: _SymbolState, start: int, end: int) -> None:
        """Bars missed between two closed klines (a reconnect, a late start) come
        from REST before the newer bar is applied; every bar before a closed one
        has closed, so no clock is consulted."""
        k = await self.client.get_klines(st.symbol, self.proc.interval, start=start, end=end)
        for i in range(len(k)):
            row = {
                "o": k.open[i],
                "h": k.high[i],
                "l": k.low[i],
                "c": k.close[i],
                "v": k.volume[i],
            }
            self._feed(st, int(k.open_time[i]), row)
            self.counts["backfilled"] += 1

    async def _advance(self, st: _SymbolState) -> list[dict[str, Any]]:
        """Runs the analyzers over the timeframe bars that closed."""
        proc = self.proc
        new: dict[str, MarketData] = {}
        for i, tf in enumerate(proc.timeframes):
            t, o, h, lo, c, v, _count, _partial = st.resampler.drain(i)
            keep = t > st.last_analyzed[tf]
            if keep.any():
                new[tf] = MarketData(
                    st.symbol, tf, t[keep], o[keep], h[keep], lo[keep], c[keep], v[keep]
                )
                st.last_analyzed[tf] = int(t[keep][-1])
        if not new:
            return []
        signals: list[dict[str, Any]] = []
        for a in proc.analyzers:
            name = getattr(a, "name", type(a).__name__)
            prev = st.results.get(name)
            if getattr(a, "timeframes", None) is not None:
                data: Any = {tf: new[tf] for tf in a.timeframes if tf in new}
            else:
                data = new.get(getattr(a, "timeframe", None) or proc.timeframes[0])
            if not data or prev is None:
                continue
            r = await a.update_incremental(data, prev)
            st.results[name] = r
            signals.extend(r.signals)
        return signals

    async def _write(self) -> None:
        while True:
            batch = await self.queue.get()
            if batch is None:
                return
            try:
                await self.proc._emit(batch)
            except Exception as e:
                self.counts["sink_errors"] += 1
                self.proc.metrics.error("sinks", e)
                log.error("stream: sinks failed for %d signals: %s", len(batch), e)

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        reader = self._tasks[0] if self._tasks else None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if len(self._tasks) > 1:
            await self.queue.put(None)
            await asyncio.gather(self._tasks[1], return_exceptions=True)
