"""The analysis pipeline: MarketData, resampling (batch, matrix, incremental),
no-look-ahead joins, the analyzers (incremental equal to batch bit for bit) and the
processor against ferrotick's simulated exchange."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest
from conftest import run_python

import ferrotick
from ferrotick import _core
from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
from ferrotick.monitor import CollectorRegistry, generate_latest
from ferrotick.pipeline import (
    AnalysisResult,
    AsyncConfig,
    AsyncDataProcessor,
    BaseAnalyzer,
    ListSink,
    MarketData,
    MarketRegimeAnalyzer,
    MultiTimeframeAnalyzer,
    Resampler,
    join_higher,
)
from ferrotick.sim import SimulatedExchange

MIN = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % (86_400_000)  # a UTC midnight


def series(n: int, seed: int = 1, start: int = T0, step: int = MIN) -> MarketData:
    rng = np.random.default_rng(seed)
    c = 100 + np.cumsum(rng.normal(size=n))
    t = start + np.arange(n, dtype=np.int64) * step
    return MarketData(
        "TEST", "1m", t, c + rng.normal(0, 0.1, n), c + 1, c - 1, c, rng.random(n) * 10
    )


def pandas_resample(md: MarketData, rule: str, **kw: object) -> pd.DataFrame:
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    df = md.to_pandas().resample(rule, label="left", closed="left", **kw).agg(agg)
    return df.dropna(subset=["close"])


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all(a.view(np.uint64) == b.view(np.uint64)))


# -- MarketData ------------------------------------------------------------------------


def test_constructors_round_trip_and_share_memory() -> None:
    md = series(300)
    df = md.to_pandas()
    assert str(df.index.tz) == "UTC"
    back = MarketData.from_pandas(df, "TEST", "1m")
    assert np.array_equal(back.open_time, md.open_time)
    assert np.array_equal(back.close, md.close)
    pol = MarketData.from_polars(md.to_polars(), "TEST", "1m")
    assert np.array_equal(pol.open_time, md.open_time)
    assert np.array_equal(pol.volume, md.volume)
    same = MarketData("TEST", "1m", md.open_time, md.open, md.high, md.low, md.close, md.volume)
    assert np.shares_memory(same.close, md.close)
    assert md.data is md.data  # the seed's DataFrame, built once


def test_bad_market_data_names_the_problem() -> None:
    md = series(10)
    t = md.open_time.copy()
    t[5] = t[4]
    with pytest.raises(ferrotick.MarketDataError, match="element 5"):
        MarketData("X", "1m", t, md.open, md.high, md.low, md.close)
    with pytest.raises(ferrotick.MarketDataError, match="close: 9 values"):
        MarketData("X", "1m", md.open_time, md.open, md.high, md.low, md.close[:9])
    with pytest.raises(ferrotick.ConfigError, match="timeframe"):
        MarketData("X", "7x", md.open_time, md.open, md.high, md.low, md.close)
    with pytest.raises(ferrotick.ConfigError, match="whole multiple"):
        md.resample("90s")
    with pytest.raises(ferrotick.ConfigError, match="tz"):
        md.resample("1d", tz="Mars/Olympus")


# -- resampling ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule,pd_rule", [("5m", "5min"), ("15m", "15min"), ("1h", "1h"), ("4h", "4h"), ("1d", "1D")]
)
def test_resample_matches_pandas(rule: str, pd_rule: str) -> None:
    md = series(6000, start=T0 + 7 * MIN)
    got = md.resample(rule)
    want = pandas_resample(md, pd_rule)
    assert np.array_equal(got.open_time, want.index.as_unit("ms").asi8)
    for c in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(got, c), want[c].to_numpy()), c
    assert np.allclose(got.volume, want["volume"].to_numpy(), rtol=0, atol=1e-9)


def test_weeks_start_on_monday_and_months_are_calendar_months() -> None:
    md = series(60 * 24 * 40, step=MIN)  # 40 days
    w = md.resample("1w")
    days = pd.to_datetime(w.open_time, unit="ms", utc=True)
    assert all(d.weekday() == 0 and d.hour == 0 for d in days[1:])
    want = pandas_resample(md, "W-MON")  # pandas labels W-MON by the Monday ending it
    assert np.array_equal(w.close, want["close"].to_numpy())
    m = md.resample("1M")
    months = pd.to_datetime(m.open_time, unit="ms", utc=True)
    assert all(d.day == 1 and d.hour == 0 for d in months[1:])


def test_daily_buckets_in_a_time_zone_follow_dst() -> None:
    # 2024-03-28 .. 2024-04-02 in hours: London moves to BST on 2024-03-31
    start = int(pd.Timestamp("2024-03-28", tz="UTC").value // 1_000_000)
    md = MarketData.from_arrays(
        "X",
        "1h",
        open_time=start + np.arange(24 * 6, dtype=np.int64) * 3_600_000,
        open=np.ones(144),
        high=np.ones(144),
        low=np.ones(144),
        close=np.ones(144),
        volume=np.ones(144),
    )
    d = md.resample("1d", tz="Europe/London")
    local = pd.to_datetime(d.open_time, unit="ms", utc=True).tz_convert("Europe/London")
    assert all(x.hour == 0 for x in local[1:])
    hours = dict(zip([x.date().isoformat() for x in local], d.volume.tolist(), strict=True))
    assert hours["2024-03-31"] == 23.0  # the short day
    assert hours["2024-03-29"] == 24.0


def test_gaps_nan_and_partial_last_bar() -> None:
    md = series(30)
    keep = np.r_[0:5, 15:22]  # a gap of two 5m buckets; the last bucket holds 2 bars
    gappy = MarketData(
        "X",
        "1m",
        md.open_time[keep],
        md.open[keep],
        md.high[keep],
        md.low[keep],
        md.close[keep],
        md.volume[keep],
    )
    r = gappy.resample("5m")
    assert len(r) == 3 and r.partial_last
    f = gappy.resample("5m", fill_empty=True)
    assert len(f) == 5
    assert f.volume[1] == 0.0 and f.open[1] == f.close[0] == f.close[1]
    c = md.close.copy()
    c[4] = np.nan
    nanny = MarketData("X", "1m", md.open_time, md.open, md.high, md.low, c, md.volume)
    assert nanny.resample("5m").close[0] == md.close[3]
    full = series(30).resample("5m")
    assert not full.partial_last


def test_matrix_resample_equals_rows() -> None:
    rng = np.random.default_rng(5)
    m, n = 7, 3000
    t = T0 + np.arange(n, dtype=np.int64) * MIN
    cols = [np.ascontiguousarray(100 + rng.normal(size=(m, n)).cumsum(axis=1)) for _ in range(5)]
    ot, o, h, lo, c, v, count, partial = _core.pipeline_resample_matrix(
        t, *cols, width=5 * MIN, origin=0, interval=MIN
    )
    assert o.shape == (m, len(ot)) and count.sum() == n and not partial
    for r in range(m):
        row = MarketData("X", "1m", t, *(x[r] for x in cols)).resample("5m")
        assert np.array_equal(row.open_time, ot)
        for got, want in (
            (o, row.open),
            (h, row.high),
            (lo, row.low),
            (c, row.close),
            (v, row.volume),
        ):
            assert same_bits(got[r], want)


def test_incremental_resampling_equals_batch_and_drops_repeats() -> None:
    md = series(5000, start=T0 + 3 * MIN)
    tfs = {"5m": 5 * MIN, "1h": 60 * MIN, "4h": 240 * MIN}
    r = Resampler(MIN, [(w, 0) for w in tfs.values()])
    half = 2500
    for i in range(half):
        r.update(int(md.open_time[i]), md.open[i], md.high[i], md.low[i], md.close[i], md.volume[i])
    r.update(int(md.open_time[half - 1]), 1.0, 1.0, 1.0, 1.0, 1.0)  # a repeat
    assert r.dropped == 1
    rest = slice(half, None)
    r.update_many(
        md.open_time[rest],
        md.open[rest],
        md.high[rest],
        md.low[rest],
        md.close[rest],
        md.volume[rest],
    )
    for k, tf in enumerate(tfs):
        batch = md.resample(tf)
        t, o, h, lo, c, v, _count, _p = r.drain(k)
        cur = r.current(k)
        n_closed = len(batch) - (1 if batch.partial_last else 0)
        assert len(t) == n_closed
        assert np.array_equal(t, batch.open_time[:n_closed])
        for got, want in (
            (o, batch.open),
            (h, batch.high),
            (lo, batch.low),
            (c, batch.close),
            (v, batch.volume),
        ):
            assert same_bits(got, want[:n_closed])
        if batch.partial_last:
            assert cur is not None and cur[0] == batch.open_time[-1] and cur[4] == batch.close[-1]


def test_join_higher_has_no_look_ahead() -> None:
    md = series(600, start=T0)
    m5 = md.resample("5m")
    h1 = md.resample("1h")
    joined = join_higher(m5, h1, h1.close)
    # the first hour's close shows on the 5m bar closing at 01:00 (its 12th), not before
    assert np.isnan(joined[:11]).all()
    assert joined[11] == h1.close[0]
    assert joined[12] == h1.close[0] and joined[23] == h1.close[1]
    close_5m = m5.close_time
    close_1h = h1.close_time
    for i in range(len(m5)):
        if not np.isnan(joined[i]):
            j = int(np.flatnonzero(h1.close == joined[i])[0])
            assert close_1h[j] <= close_5m[i]


# -- analyzers -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_regime_incremental_equals_batch_bit_for_bit() -> None:
    md = series(4000, seed=9).resample("5m")
    a = MarketRegimeAnalyzer()
    full = await a.analyze(md)
    cut = 500
    head = MarketData(
        md.symbol,
        md.timeframe,
        *(x[:cut] for x in (md.open_time, md.open, md.high, md.low, md.close, md.volume)),
    )
    prev = await a.analyze(head)
    rest = [slice(cut, 650), slice(650, 651), slice(651, None)]
    got_codes, got_conf = [], []
    for s in rest:
        part = MarketData(
            md.symbol,
            md.timeframe,
            *(x[s] for x in (md.open_time, md.open, md.high, md.low, md.close, md.volume)),
        )
        prev = await a.update_incremental(part, prev)
        got_codes.append(prev.series["regime"])
        got_conf.append(prev.series["confidence"])
    assert np.array_equal(np.concatenate(got_codes), full.series["regime"][cut:])
    assert same_bits(np.concatenate(got_conf), full.series["confidence"][cut:])
    assert prev.values == full.values
    names = {full.values["regime"], *(a_ for a_ in ("ranging", "volatile"))}
    assert names <= set(ferrotick.pipeline.REGIMES)
    codes = set(full.series["regime"].tolist())
    assert len(codes) >= 3  # the rules produce several regimes on a random walk
    json.dumps(full.to_dict(series=True))
    with pytest.raises(ferrotick.MarketDataError, match="after the previous"):
        await a.update_incremental(head, prev)


@pytest.mark.asyncio
async def test_multi_timeframe_incremental_equals_batch() -> None:
    md = series(8000, seed=4)
    a = MultiTimeframeAnalyzer(["5m", "15m", "1h"], indicators={"1h": [("BBANDS", 20)]})
    full = await a.analyze(md)
    assert set(full.values["timeframes"]) == {"5m", "15m", "1h"}
    assert -1 <= full.values["alignment"] <= 1
    head = md._slice(slice(0, 6000), False)
    prev = await a.analyze(head)
    frames_full = {tf: md.resample(tf) for tf in a.timeframes}
    frames_head = {tf: head.resample(tf) for tf in a.timeframes}
    new = {}
    for tf in a.timeframes:
        n_head = len(frames_head[tf])
        # the head's last bar was partial only if it is still growing: continue from it
        f = frames_full[tf]
        new[tf] = f._slice(slice(n_head, None), False)
    # the head's partial bars differ from the full data's: compare on bar-aligned cuts
    assert all(not frames_head[tf].partial_last for tf in a.timeframes)
    inc = await a.update_incremental(new, prev)
    for tf in a.timeframes:
        for k, v in full.values["timeframes"][tf].items():
            assert inc.values["timeframes"][tf][k] == v, (tf, k)
    assert inc.values["alignment"] == full.values["alignment"]
    with pytest.raises(ferrotick.ConfigError, match="fast"):
        MultiTimeframeAnalyzer(fast=50, slow=20)


@pytest.mark.asyncio
async def test_base_analyzer_default_incremental_is_analyze() -> None:
    class Last(BaseAnalyzer):
        name = "last"

        async def analyze(self, data: MarketData) -> AnalysisResult:
            return AnalysisResult(
                self.name, data.symbol, data.timeframe, {"close": float(data.close[-1])}
            )

    md = series(10)
    r = await Last().analyze(md)
    r2 = await Last().update_incremental(md, r)
    assert r2.values == r.values == {"close": float(md.close[-1])}


# -- the processor against the simulated exchange ----------------------------------------


def client_for(ex: SimulatedExchange) -> OptimizedBinanceClient:
    return OptimizedBinanceClient(BinanceConfig(base_url=ex.base_url, ws_url=ex.ws_url))


@pytest.mark.asyncio
async def test_processor_isolates_failures_and_feeds_metrics_and_sinks() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    reg = CollectorRegistry()
    async with SimulatedExchange(symbols, seed=2) as ex:
        sink = ListSink()
        async with (
            client_for(ex) as client,
            AsyncDataProcessor(
                AsyncConfig(max_concurrent_symbols=2),
                client=client,
                bars=2000,
                sinks=[sink],
                registry=reg,
            ) as p,
        ):
            res = await p.process_symbols_parallel([*symbols, "NOSUCHPAIR"])
            assert len(res) == 5
            assert [r.symbol for r in res] == [*symbols, "NOSUCHPAIR"]
            bad = res[-1]
            assert (
                not bad.ok
                and bad.stage == "fetch"
                and isinstance(bad.error, ferrotick.ExchangeError)
            )
            assert all(r.ok and r.bars == 2000 for r in res[:-1])
            for r in res[:-1]:
                assert set(r.results) == {"market_regime", "multi_timeframe"}
                assert r.results["market_regime"].values["regime"] in ferrotick.pipeline.REGIMES
            key = lambda d: (d["symbol"], d["signal_type"])  # noqa: E731
            assert sorted(sink.items, key=key) == sorted(res.signals, key=key)
            text = generate_latest(reg).decode()
            assert 'async_operation_duration_seconds_count{operation_type="fetch"} 5' in text
            assert 'async_errors_total{operation_type="fetch",error_type="ExchangeError"} 1' in text
            assert "active_async_tasks 0" in text
            health = await p.health_checker().check_async_operations()
            assert health == {
                "data_streaming": True,
                "indicator_processing": True,
                "api_connectivity": True,
                "thread_pools": True,
            }


@pytest.mark.parametrize("monitor_first", [True, False])
def test_default_registry_processor_shares_the_monitors_series(monitor_first: bool) -> None:
    """On the default registry the pipeline's series are the process-wide monitor's
    (same names): creating either first works, and pipeline stages show in both."""
    out = run_python(
        f"""
        from ferrotick.monitor import REGISTRY, generate_latest, get_async_monitor
        from ferrotick.pipeline import AsyncDataProcessor
        if {monitor_first}:
            get_async_monitor()
        p = AsyncDataProcessor()
        m = get_async_monitor()
        assert p.metrics.durations is m.duration and p.metrics.errors is m.errors
        p.metrics.duration("fetch", 0.01)
        assert m.get_metrics("fetch")["count"] == 1
        text = generate_latest(REGISTRY).decode()
        assert text.count("# TYPE async_operation_duration_seconds histogram") == 1
        assert 'async_operation_duration_seconds_count{{operation_type="fetch"}} 1' in text
        print("ok")
        """
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.asyncio
async def test_processor_retries_transient_exchange_errors() -> None:
    async with SimulatedExchange(["BTCUSDT", "ETHUSDT"], seed=3, error_rate=0.3) as ex:
        async with client_for(ex) as client:
            p = AsyncDataProcessor(
                AsyncConfig(retry_attempts=8, backoff_factor=1.0), client=client, bars=300
            )
            res = await p.process_symbols_parallel(["BTCUSDT", "ETHUSDT"] * 5)
            assert all(r.ok for r in res), [str(r.error) for r in res.failed]


@pytest.mark.asyncio
async def test_a_failing_sink_fails_its_symbols_not_silently() -> None:
    class Down:
        def __init__(self) -> None:
            self.calls = 0

        async def write(self, batch: list[dict]) -> None:
            self.calls += 1
            raise ConnectionError("sink is down")

        async def flush(self) -> None: ...

        async def close(self) -> None: ...

    class Always(BaseAnalyzer):
        name = "always"

        async def analyze(self, data: MarketData) -> AnalysisResult:
            sig = {"symbol": data.symbol, "signal_type": "BUY", "value": 1.0, "confidence": 1.0}
            return AnalysisResult(self.name, data.symbol, data.timeframe, signals=[sig])

    always = Always()
    down = Down()
    async with SimulatedExchange(["BTCUSDT"], seed=1) as ex, client_for(ex) as client:
        p = AsyncDataProcessor(
            AsyncConfig(retry_attempts=2, backoff_factor=1.0),
            client=client,
            bars=500,
            timeframes=["5m", "15m"],
            analyzers=[always],
            sinks=[down],
        )
        res = await p.process_symbols_parallel(["BTCUSDT"])
    assert not res[0].ok and res[0].stage == "sinks"
    assert down.calls == 3


@pytest.mark.asyncio
async def test_real_time_stream_updates_incrementally() -> None:
    async with SimulatedExchange(["BTCUSDT", "ETHUSDT"], seed=5, time_scale=120) as ex:
        sink = ListSink()
        async with client_for(ex) as client:
            p = AsyncDataProcessor(client=client, bars=1500, timeframes=["5m", "15m"], sinks=[sink])
            await p.start_real_time_stream(["BTCUSDT", "ETHUSDT"])
            await asyncio.sleep(4)
            stats = p.stream_stats()
            health = await p.health_checker().check_async_operations()
            await p.stop()
    assert stats["bars"] >= 4, stats
    assert stats.get("errors", 0) == 0
    assert stats["latency_p99"] is not None and stats["latency_p99"] < 0.1
    assert health["data_streaming"]
    assert len(sink.items) == len(p.last_run.signals) + stats.get("signals", 0)


def test_bad_processor_settings() -> None:
    with pytest.raises(ferrotick.ConfigError, match="max_concurrent_symbols"):
        AsyncConfig(max_concurrent_symbols=0)
    with pytest.raises(ferrotick.ConfigError, match="backoff_factor"):
        AsyncConfig(backoff_factor=0.5)
    with pytest.raises(ferrotick.ConfigError, match="whole multiple"):
        AsyncDataProcessor(interval="1h", timeframes=["90m"])
    with pytest.raises(ferrotick.ConfigError, match="sinks"):
        AsyncDataProcessor(sinks=[42])


@pytest.mark.asyncio
async def test_signal_store_is_a_sink(tmp_path) -> None:
    from ferrotick.store import SignalManager

    store = SignalManager(tmp_path / "signals.sqlite3", signal_types=["REGIME_CHANGE"])
    symbols = [f"S{i:02d}USDT" for i in range(12)]
    async with SimulatedExchange(symbols, seed=11) as ex, client_for(ex) as client:
        p = AsyncDataProcessor(client=client, bars=1200, sinks=[store])
        res = await p.process_symbols_parallel(symbols)
        await p.close()
    assert all(r.ok for r in res)
    reopened = SignalManager(tmp_path / "signals.sqlite3", signal_types=["REGIME_CHANGE"])
    try:
        rows = await reopened.get_signals_async(include_expired=True)
    finally:
        await reopened.close()
    assert len(rows) == len(res.signals) > 0
    assert {(r.symbol, r.signal_type) for r in rows} == {
        (s["symbol"], s["signal_type"]) for s in res.signals
    }


@pytest.mark.asyncio
async def test_dask_cluster_gives_the_local_results() -> None:
    distributed = pytest.importorskip("distributed")
    symbols = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "NOSUCHPAIR"]
    async with SimulatedExchange(symbols[:3], seed=21) as ex, client_for(ex) as client:
        proc = AsyncDataProcessor(client=client, bars=1500)
        local = await proc.process_symbols_parallel(symbols)
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as dask_client,
        ):
            remote_proc = AsyncDataProcessor(client=client, bars=1500, executor=dask_client)
            # the whole pipeline on the cluster: one result per symbol, failures isolated
            remote = await remote_proc.process_symbols_parallel(symbols)
            # and on the same bars, the same numbers as the local run, bit for bit
            same_input = {
                s: await remote_proc._analyze(proc.state[s]["frames"]) for s in symbols[:3]
            }
    assert [r.ok for r in remote] == [r.ok for r in local] == [True, True, True, False]
    assert remote[3].stage == "fetch"
    for r in local[:3]:
        got = same_input[r.symbol]
        assert r.results.keys() == got.keys()
        for name in got:  # to_dict: NaN (a warming-up indicator) compares as None
            assert r.results[name].to_dict() == got[name].to_dict()
        ra, rb = r.results["market_regime"].series, got["market_regime"].series
        assert same_bits(ra["confidence"], rb["confidence"])
        assert np.array_equal(ra["regime"], rb["regime"])
