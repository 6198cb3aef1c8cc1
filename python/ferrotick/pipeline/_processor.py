"""``AsyncDataProcessor``: fetch → resample → indicators → analyzers → signals → sinks
for many symbols at once, and the same incrementally on live klines (seed 004)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _core
from .._errors import ConfigError, ExchangeError, FerrotickError, MarketDataError
from . import _timeframe as tfm
from ._analyzers import AnalysisResult, BaseAnalyzer, MarketRegimeAnalyzer, MultiTimeframeAnalyzer
from ._config import AsyncConfig
from ._data import MarketData, rule_kwargs
from ._metrics import PipelineMetrics
from ._sinks import as_sink

log = logging.getLogger("ferrotick.pipeline")

# Exchange answers that another try cannot change: a bad symbol, a bad
# parameter, a signature or permission problem.
_FINAL_CODES = frozenset(range(-1199, -1099)) | {-2014, -2015, -1022, -1002}


@dataclass
class SymbolResult:
    """One symbol's outcome: ``ok`` with ``results`` ({analyzer name: AnalysisResult})
    and ``signals``, or not ``ok`` with the ``error`` and the ``stage`` it met."""

    symbol: str
    ok: bool
    results: dict[str, AnalysisResult] = field(default_factory=dict)
    signals: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None
    stage: str | None = None
    bars: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "ok": self.ok,
            "bars": self.bars,
            "seconds": self.seconds,
            "results": {k: r.to_dict() for k, r in self.results.items()},
            "signals": [dict(s) for s in self.signals],
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
            "stage": self.stage,
        }


class ProcessingResults(list[SymbolResult]):
    """The per-symbol results of one ``process_symbols_parallel`` call, in the
    order the symbols were given (one entry per symbol, failed ones included)."""

    seconds: float = 0.0

    @property
    def succeeded(self) -> list[SymbolResult]:
        return [r for r in self if r.ok]

    @property
    def failed(self) -> list[SymbolResult]:
        return [r for r in self if not r.ok]

    @property
    def signals(self) -> list[dict[str, Any]]:
        return [s for r in self for s in r.signals]

    def by_symbol(self) -> dict[str, SymbolResult]:
        return {r.symbol: r for r in self}


class _Stage(Exception):
    """Carries the stage a symbol's error happened in."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(stage)
        self.stage = stage
        self.error = error


def _retryable(e: BaseException) -> bool:
    if isinstance(e, ExchangeError):
        return e.code is None or e.code not in _FINAL_CODES
    if isinstance(e, (ConfigError, MarketDataError)):
        return False
    return isinstance(e, (FerrotickError, TimeoutError, ConnectionError, OSError))


class AsyncDataProcessor:
    """Processes many symbols concurrently within ``AsyncConfig``'s limits.

    - ``client``: an ``OptimizedBinanceClient`` (connected on first use); the only
      way data comes in. Its weight budget applies on top of this processor's
      ``max_concurrent_requests``.
    - ``interval``/``bars``: what is fetched per symbol (the latest ``bars`` klines,
      paginated by the client past 1,000).
    - ``timeframes``: what the bars are resampled to (in Rust).
    - ``analyzers``: defaults to a ``MarketRegimeAnalyzer`` on the first timeframe
      and a ``MultiTimeframeAnalyzer`` over all of them. An analyzer with a
      ``timeframes`` attribute gets ``{timeframe: MarketData}``; any other gets the
      MarketData of its ``timeframe`` attribute, or of the first timeframe.
    - ``sinks``: objects with ``write(batch)``/``flush()``/``close()`` (a list or a
      callable works too); every signal goes to every sink.
    - ``monitor``/``registry``: where the seed's metric series are recorded —
      ``async_operation_duration_seconds{operation_type}``, ``active_async_tasks``
      and ``async_errors_total{operation_type,error_type}``, the performance
      monitor's own series: the ``AsyncPerformanceMonitor`` given, else the
      process-wide one, or with ``registry`` one monitor on that registry.
    """

    def __init__(
        self,
        config: AsyncConfig | None = None,
        *,
        client: Any = None,
        interval: str = "1m",
        bars: int = 1000,
        timeframes: Sequence[str] = ("5m", "15m", "1h", "4h"),
        analyzers: Sequence[BaseAnalyzer] | None = None,
        sinks: Iterable[Any] = (),
        registry: Any = None,
        monitor: Any = None,
        executor: Any = None,
    ) -> None:
        if config is not None and not isinstance(config, AsyncConfig):
            raise ConfigError(f"config: expected an AsyncConfig, got {type(config).__name__}")
        self.config = config or AsyncConfig()
        self.interval = interval
        self._source = tfm.parse(interval, "interval")
        if isinstance(bars, bool) or not isinstance(bars, int) or bars < 1:
            raise ConfigError(f"bars: expected an integer >= 1, got {bars!r}")
        self.bars = bars
        if isinstance(timeframes, str) or not timeframes:
            raise ConfigError("timeframes: expected a non-empty list such as ['5m', '1h']")
        for t in timeframes:
            rule_kwargs(tfm.parse(t, "timeframes"), self._source, np.zeros(0, np.int64), None)
        self.timeframes = list(timeframes)
        self.analyzers = (
            list(analyzers)
            if analyzers is not None
            else [MarketRegimeAnalyzer(), MultiTimeframeAnalyzer(self.timeframes)]
        )
        for a in self.analyzers:
            if not callable(getattr(a, "analyze", None)):
                raise ConfigError(f"analyzers: {a!r} has no analyze()")
        self.sinks = [as_sink(s) for s in sinks]
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise ConfigError(
                f"executor: expected a dask.distributed Client, got {type(executor).__name__}"
            )
        self.executor = executor
        self._client = client
        self._own_client = client is None
        self._client_ready = False
        self._connect_lock = asyncio.Lock()
        self.metrics = PipelineMetrics.for_registry(registry, monitor)
        self._sym_sem = asyncio.Semaphore(self.config.max_concurrent_symbols)
        self._req_sem = asyncio.Semaphore(self.config.max_concurrent_requests)
        self._cpu_sem = asyncio.Semaphore(self.config.cpu_thread_pool_size)
        self._server_offset_ms = 0.0
        self._stream: Any = None
        self.last_run: ProcessingResults | None = None
        self.state: dict[str, dict[str, Any]] = {}

    # -- client ---------------------------------------------------------------------

    async def _get_client(self) -> Any:
        """The exchange client, connected once (its limits and clock read)."""
        if self._client is None:
            from ..exchange import OptimizedBinanceClient

            self._client = OptimizedBinanceClient()
        if not self._client_ready:
            async with self._connect_lock:
                if not self._client_ready:
                    if hasattr(self._client, "connect"):
                        await self._client.connect()
                    self._client_ready = True
        return self._client

    async def _sync_clock(self, client: Any) -> None:
        """The exchange's clock, to tell whether the last kline is still open."""
        try:
            t0 = time.time()
            server = await client.get_server_time()
            self._server_offset_ms = server - (t0 + time.time()) / 2 * 1000
        except FerrotickError:
            self._server_offset_ms = 0.0

    def _now_ms(self) -> float:
        return time.time() * 1000 + self._server_offset_ms

    async def close(self) -> None:
        """Stops any stream, flushes and closes the sinks, and closes a client this
        processor created."""
        await self.stop()
        for s in self.sinks:
            await s.flush()
            await s.close()
        if self._own_client and self._client is not None:
            await self._client.close()

    async def __aenter__(self) -> AsyncDataProcessor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- batch ----------------------------------------------------------------------

    async def process_symbols_parallel(
        self,
        symbols: Iterable[str],
        *,
        on_result: Callable[[SymbolResult], Any] | None = None,
    ) -> ProcessingResults:
        """Processes every symbol; one result per symbol, in order. A failure stays
        with its symbol (``ok=False`` with the error and stage) and is counted in
        ``async_errors_total``. ``on_result`` is called with each result as it
        completes (a progress bar, a log line)."""
        symbols = list(symbols)
        for i, s in enumerate(symbols):
            if not isinstance(s, str) or not s:
                raise ConfigError(f"symbols[{i}]: expected a non-empty str, got {s!r}")
        t0 = time.perf_counter()
        client = await self._get_client()
        await self._sync_clock(client)
        out = ProcessingResults(await asyncio.gather(*(self.process_symbol(s) for s in symbols)))
        out.seconds = time.perf_counter() - t0
        self.last_run = out
        return out

    async def process_symbol(self, symbol: str) -> SymbolResult:
        """One symbol through every stage, under the symbol semaphore."""
        async with self._sym_sem:
            self.metrics.active.inc()
            t0 = time.perf_counter()
            try:
                res = await self._run(symbol)
            except _Stage as e:
                self.metrics.error(e.stage, e.error)
                res = SymbolResult(symbol, False, error=e.error, stage=e.stage)
            finally:
                self.metrics.active.dec()
            res.seconds = time.perf_counter() - t0
            return res

    async def _stage(self, name: str, coro: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise _Stage(name, e) from e
        finally:
            self.metrics.duration(name, time.perf_counter() - t0)

    async def _run(self, symbol: str) -> SymbolResult:
        md = await self._stage("fetch", self.fetch(symbol))
        frames = await self._stage("resample", self._resample(md))
        results = await self._stage("indicators", self._analyze(frames))
        signals = [s for r in results.values() for s in r.signals]
        if signals:
            await self._stage("sinks", self._emit(signals))
        self.state[symbol] = {"frames": frames, "results": results, "base": md}
        return SymbolResult(symbol, True, results, signals, bars=len(md))

    async def fetch(self, symbol: str) -> MarketData:
        """The latest ``bars`` klines of ``symbol``, retried on transient failures
        (``retry_attempts`` more tries, ``backoff_factor ** attempt / 10`` s apart)
        within ``request_timeout`` per try."""
        client = await self._get_client()
        cfg = self.config
        attempt = 0
        while True:
            try:
                async with self._req_sem:
                    async with asyncio.timeout(cfg.request_timeout):
                        k = await client.get_klines(symbol, self.interval, limit=self.bars)
                break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if attempt >= cfg.retry_attempts or not _retryable(e):
                    raise
                self.metrics.error("fetch_retry", e)
                await asyncio.sleep(cfg.backoff_factor**attempt / 10)
                attempt += 1
        n = len(k)
        partial = bool(n) and int(k.close_time[n - 1]) >= self._now_ms()
        return MarketData.from_klines(k, partial_last=partial)

    async def _resample(self, md: MarketData) -> dict[str, MarketData]:
        return {tf: md if tf == md.timeframe else md.resample(tf) for tf in self.timeframes}

    async def _analyze(self, frames: dict[str, MarketData]) -> dict[str, AnalysisResult]:
        if self.executor is not None:
            return await self._analyze_remote(frames)
        return await self._analyze_local(frames)

    async def _analyze_local(self, frames: dict[str, MarketData]) -> dict[str, AnalysisResult]:
        async with self._cpu_sem:
            rs = await asyncio.gather(
                *(a.analyze(_inputs_for(a, frames, self.timeframes)) for a in self.analyzers)
            )
        return {
            getattr(a, "name", type(a).__name__): r for a, r in zip(self.analyzers, rs, strict=True)
        }

    async def _analyze_remote(self, frames: dict[str, MarketData]) -> dict[str, AnalysisResult]:
        """The analyses of one symbol on a Dask worker: the frames' arrays and the
        analyzers are pickled there, the results pickled back (without the state
        ``update_incremental`` continues from, which stays with local runs)."""
        fut = self.executor.submit(
            _analyze_on_worker,
            frames,
            self.analyzers,
            self.timeframes,
            pure=False,
        )
        if getattr(self.executor, "asynchronous", False):
            return await fut
        return await asyncio.to_thread(fut.result)

    async def _emit(self, signals: list[dict[str, Any]]) -> None:
        """Writes to every sink, each retried; raises if one still fails."""
        for sink in self.sinks:
            attempt = 0
            while True:
                try:
                    await sink.write(signals)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if attempt >= self.config.retry_attempts:
                        raise
                    self.metrics.error("sinks_retry", e)
                    await asyncio.sleep(self.config.backoff_factor**attempt / 10)
                    attempt += 1

    # -- streaming ------------------------------------------------------------------

    async def start_real_time_stream(
        self,
        symbols: Iterable[str],
        *,
        buffer: int = 10_000,
        overflow: str = "drop_oldest",
        queue_size: int = 1_000,
    ) -> Any:
        """Streams ``<symbol>@kline_<interval>`` for every symbol and, on each closed
        bar, updates the resampler, the analyzers (incrementally) and emits signals.

        Symbols without state are processed in batch first. Backpressure: the
        socket's buffer holds ``buffer`` messages (``overflow`` policy, drops counted
        in ``stream_stats()``); signals wait in a queue of ``queue_size`` batches for
        the sinks, and a full queue pauses reading the buffer. Returns the stream
        (``stop()`` ends it)."""
        from ._stream import RealTimeStream

        symbols = list(symbols)
        if self._stream is not None:
            raise ConfigError("stream: already running; stop() it first")
        missing = [s for s in symbols if s not in self.state]
        if missing:
            res = await self.process_symbols_parallel(missing)
            for r in res.failed:
                log.warning("stream: %s left out: %s", r.symbol, r.error)
        symbols = [s for s in symbols if s in self.state]
        client = await self._get_client()
        self._stream = RealTimeStream(self, client, symbols, buffer, overflow, queue_size)
        await self._stream.start()
        return self._stream

    async def stop(self) -> None:
        """Stops the real-time stream, handing every queued signal to the sinks."""
        if self._stream is not None:
            s, self._stream = self._stream, None
            await s.stop()

    def stream_stats(self) -> dict[str, Any]:
        return {} if self._stream is None else self._stream.stats()

    # -- health ---------------------------------------------------------------------

    def health_checker(self, timeout: float = 5.0) -> Any:
        """An ``AsyncHealthChecker`` with seed 004's four checks:
        ``data_streaming`` (no stream, or one that received a message within its
        watchdog), ``indicator_processing`` (a small kernel run on the compute pool),
        ``api_connectivity`` (the exchange's server time) and ``thread_pools`` (the
        runtime's threads are up and its queue drains)."""
        from ..monitor import AsyncHealthChecker

        h = AsyncHealthChecker(timeout=timeout)
        h.add_check("data_streaming", self._check_stream)
        h.add_check("indicator_processing", self._check_indicators)
        h.add_check("api_connectivity", self._check_api)
        h.add_check("thread_pools", self._check_pools)
        return h

    async def _check_stream(self) -> bool:
        return self._stream is None or self._stream.healthy()

    async def _check_indicators(self) -> bool:
        from ..ta import aio

        x = np.arange(64, dtype=np.float64)
        r = await aio.SMA(x, timeperiod=8)
        return bool(r[-1] == x[-8:].mean())

    async def _check_api(self) -> bool:
        client = await self._get_client()
        return bool(await client.get_server_time())

    async def _check_pools(self) -> bool:
        stats = _core.runtime_stats()
        if stats.get("worker_threads", 0) < 1 or stats.get("compute_threads", 0) < 1:
            return False
        await _core.sleep(0)
        return True


def _inputs_for(a: Any, frames: dict[str, MarketData], timeframes: list[str]) -> Any:
    """What analyzer ``a`` is given: ``{timeframe: MarketData}`` when it has
    ``timeframes``, else the MarketData of its ``timeframe`` (or the first one)."""
    if getattr(a, "timeframes", None) is not None:
        return {tf: frames[tf] for tf in a.timeframes}
    tf = getattr(a, "timeframe", None) or timeframes[0]
    if tf not in frames:
        raise ConfigError(f"analyzers: {a!r} wants timeframe {tf!r}, not in {timeframes}")
    return frames[tf]


def _analyze_on_worker(
    frames: dict[str, MarketData], analyzers: list[Any], timeframes: list[str]
) -> dict[str, AnalysisResult]:
    """Runs on a Dask worker: the same analyses as a local run, on the worker's own
    event loop and ferrotick runtime."""

    async def go() -> dict[str, AnalysisResult]:
        out = {}
        for a in analyzers:
            r = await a.analyze(_inputs_for(a, frames, timeframes))
            r.state = None
            out[getattr(a, "name", type(a).__name__)] = r
        return out

    return asyncio.run(go())


__all__ = ["AsyncDataProcessor", "ProcessingResults", "SymbolResult"]
