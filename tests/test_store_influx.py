"""The InfluxDB writer against a real influxd 1.x (started here, temp data dirs,
free ports), a loopback stand-in for the 2.x API and a fault server."""

from __future__ import annotations

import asyncio
import gzip
import math
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from influx_servers import Influxd, ScriptedServer

from ferrotick import ConfigError, FerrotickError, _core
from ferrotick.store import InfluxDBConfig, initialize_influxdb

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(shutil.which("influxd") is None, reason="influxd is not installed"),
]

T0 = 1_700_000_000_000_000_000  # ns


@pytest.fixture(scope="module")
def influxd(tmp_path_factory):
    s = Influxd(str(tmp_path_factory.mktemp("influxd")))
    s.start()
    yield s
    s.stop()


_n = 0


@pytest.fixture
def db(influxd):
    global _n
    _n += 1
    name = f"t{_n}"
    influxd.create_db(name)
    return name


async def test_seed_api_and_exact_read_back(influxd, db):
    w = await initialize_influxdb(
        InfluxDBConfig(database=db, url=influxd.url, batch_size=1000, flush_interval=2.0)
    )
    await w.write_point(
        measurement="prices",
        fields={"price": 45000.25, "volume": 1.5, "n": 7, "ok": True, "note": "hi"},
        tags={"symbol": "BTCUSDT"},
        time=T0,
        batch=True,
    )
    points = [
        {
            "measurement": "trades",
            "fields": {"price": 45000, "quantity": 0.1},
            "tags": {"symbol": "BTCUSDT", "side": "BUY"},
            "time": T0 + 1,
        },
        {
            "measurement": "trades",
            "fields": {"price": 3000, "quantity": 0.5},
            "tags": {"symbol": "ETHUSDT", "side": "SELL"},
            "time": T0 + 2,
        },
    ]
    assert await w.write_points(points, batch=True) == 2
    await w.flush()
    rows = influxd.rows(db)
    assert rows["prices"] == [
        {
            "time": T0,
            "n": 7,
            "note": "hi",
            "ok": True,
            "price": 45000.25,
            "symbol": "BTCUSDT",
            "volume": 1.5,
        }
    ]
    assert [(r["symbol"], r["side"], r["price"], r["quantity"]) for r in rows["trades"]] == [
        ("BTCUSDT", "BUY", 45000, 0.1),
        ("ETHUSDT", "SELL", 3000, 0.5),
    ]
    await w.close()
    assert w.stats()["written"] == 3


SPECIAL = ["a,b", "a b", "a=b", 'q"uote', "back\\slash", "comma\\,escaped", "ünï©ødé", "x" * 300]


async def test_escaping_round_trips(influxd, db):
    w = await initialize_influxdb(InfluxDBConfig(database=db, url=influxd.url, gzip=True))
    pts = []
    for i, s in enumerate(SPECIAL):
        pts.append(
            {
                "measurement": "m " + s.replace("\\,", "_"),
                "tags": {"tag " + s: "v " + s},
                "fields": {"f " + s.replace("\\,", "_"): "s " + s + ' "\\ end\\'},
                "time": T0 + i,
            }
        )
    await w.write_points(pts)
    await w.flush()
    rows = influxd.rows(db)
    for i, s in enumerate(SPECIAL):
        meas = "m " + s.replace("\\,", "_")
        (row,) = rows[meas]
        assert row["time"] == T0 + i
        assert row["tag " + s] == "v " + s
        assert row["f " + s.replace("\\,", "_")] == "s " + s + ' "\\ end\\'
    await w.close()


async def test_floats_round_trip(influxd, db):
    vals = [0.1, 1e-300, 1.7976931348623157e308, -2.5e-7, 123456789.123456789, 5e-324]
    w = await initialize_influxdb(InfluxDBConfig(database=db, url=influxd.url, precision="ms"))
    for i, v in enumerate(vals):
        await w.write_point("f", {"v": v, "i": -(2**63)}, time=1_700_000_000_000 + i)
    await w.close()
    rows = influxd.rows(db)["f"]
    assert [r["v"] for r in rows] == vals
    assert rows[0]["time"] == 1_700_000_000_000 * 1_000_000
    assert all(r["i"] == -(2**63) for r in rows)


async def test_bad_points_name_the_point(influxd, db):
    w = await initialize_influxdb(InfluxDBConfig(database=db, url=influxd.url))
    good = {"measurement": "m", "fields": {"v": 1.0}}
    cases = [
        ({"measurement": "m", "fields": {"v": math.nan}}, "NaN"),
        ({"measurement": "m", "fields": {"v": math.inf}}, "inf"),
        ({"measurement": "m", "fields": {}}, "at least one field"),
        ({"measurement": "m", "fields": {"v": 1}, "tags": {"k": 5}}, "expected a string value"),
        ({"measurement": "m", "fields": {"time": 1}}, "timestamp column"),
        ({"measurement": "m", "fields": {"v": 1}, "tags": {"time": "x"}}, "timestamp column"),
        ({"measurement": "m\nx", "fields": {"v": 1}}, "newline"),
        ({"measurement": "m", "fields": {"v": 2**70}}, "64-bit"),
        ({"measurement": "m", "fields": {"v": [1]}}, "expected a number"),
    ]
    for bad, why in cases:
        with pytest.raises(ConfigError, match=r"points\[1\].*" + why):
            await w.write_points([good, bad])
    assert w.stats()["accepted"] == 0  # nothing of a rejected call was buffered
    with pytest.raises(ConfigError, match="overflow"):
        InfluxDBConfig(database="x", overflow="grow")
    with pytest.raises(ConfigError, match="bucket"):
        InfluxDBConfig(bucket="b", org="o")
    with pytest.raises(ConfigError, match="reserves"):
        _core.lp_encode_point("_m", {"v": 1}, v2=True)
    await w.close()


async def test_server_rejection_is_reported_with_the_line(influxd, db):
    w = await initialize_influxdb(InfluxDBConfig(database=db, url=influxd.url))
    await w.write_point("c", {"v": 1}, time=T0)
    await w.flush()
    await w.write_point("c", {"v": "now a string"}, time=T0 + 1)
    with pytest.raises(FerrotickError, match="field type conflict"):
        await w.flush()
    assert w.stats()["rejected"] == 1
    await w.write_point("c", {"v": 2}, time=T0 + 2)
    await w.flush()  # the writer carries on
    await w.close()
    assert influxd.count(db, "c", "v") == 2


async def test_batches_by_size_and_time(influxd, db):
    w = await initialize_influxdb(
        InfluxDBConfig(database=db, url=influxd.url, batch_size=100, flush_interval=0.3)
    )
    await w.write_points(
        [{"measurement": "b", "fields": {"v": i}, "time": T0 + i} for i in range(250)]
    )
    deadline = time.monotonic() + 2
    while w.stats()["written"] < 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert w.stats()["written"] == 200  # two full batches at once, the rest waits
    assert w.stats()["batches"] == 2
    t = time.monotonic()
    while w.stats()["written"] < 250 and time.monotonic() < t + 2:
        await asyncio.sleep(0.01)
    assert w.stats()["written"] == 250 and 0.1 < time.monotonic() - t < 1.0
    await w.close()
    assert influxd.count(db, "b", "v") == 250


async def test_numpy_columns(influxd, db):
    n = 1000
    w = await initialize_influxdb(InfluxDBConfig(database=db, url=influxd.url, batch_size=400))
    t = np.arange(n, dtype=np.int64) + T0
    close = np.linspace(100, 200, n)
    vol = np.arange(n, dtype=np.int64)
    assert (
        await w.write_columns("bars", {"close": close, "volume": vol}, t, tags={"symbol": "BTC"})
        == n
    )
    await w.close()
    rows = influxd.rows(db)["bars"]
    assert [r["close"] for r in rows] == close.tolist()
    assert [r["volume"] for r in rows] == vol.tolist()
    assert {r["symbol"] for r in rows} == {"BTC"}


async def test_drop_oldest_counts_exactly(influxd, db):
    w = await initialize_influxdb(
        InfluxDBConfig(
            database=db,
            url=influxd.url,
            batch_size=1000,
            flush_interval=60,
            max_buffer_points=100,
            overflow="drop_oldest",
        )
    )
    for i in range(0, 250, 25):
        await w.write_points(
            [{"measurement": "d", "fields": {"v": j}, "time": T0 + j} for j in range(i, i + 25)]
        )
    await w.write_points(
        [{"measurement": "d", "fields": {"v": j}, "time": T0 + j} for j in range(250, 400)]
    )
    assert w.stats()["dropped"] == 300
    await w.close()
    got = [r["v"] for r in influxd.rows(db)["d"]]
    assert got == list(range(300, 400))


async def test_block_policy_waits_for_room():
    srv = ScriptedServer(script=[(503, {"Retry-After": "1"}, b"busy")])
    url = await srv.start()
    w = await initialize_influxdb(
        InfluxDBConfig(
            database="x", url=url, batch_size=10, flush_interval=60, max_buffer_points=20
        )
    )
    await w.write_points([{"measurement": "m", "fields": {"v": i}} for i in range(10)])
    await asyncio.sleep(0.05)  # the first batch is in flight, the server says 503
    await w.write_points([{"measurement": "m", "fields": {"v": i}} for i in range(20)])
    blocked = asyncio.create_task(w.write_points([{"measurement": "m", "fields": {"v": 99}}]))
    await asyncio.sleep(0.3)
    assert not blocked.done()  # the buffer is full: the writer waits
    await asyncio.wait_for(blocked, 5)
    await asyncio.wait_for(w.close(), 5)
    assert w.stats()["dropped"] == 0 and w.stats()["written"] == 31
    await asyncio.wait_for(srv.close(), 5)


async def test_nothing_lost_across_a_server_restart(tmp_path):
    s = Influxd(str(tmp_path))
    s.start()
    try:
        s.create_db("r")
        w = await initialize_influxdb(
            InfluxDBConfig(
                database="r",
                url=s.url,
                batch_size=200,
                flush_interval=0.05,
                retry_base_delay=0.05,
                retry_max_delay=0.2,
            )
        )
        total = 0
        for k in range(20):
            if k == 8:
                await asyncio.to_thread(s.stop)
            if k == 14:
                await asyncio.to_thread(s.start)
            await w.write_points(
                [
                    {"measurement": "r", "fields": {"v": total + j}, "time": T0 + total + j}
                    for j in range(150)
                ]
            )
            total += 150
            await asyncio.sleep(0.05)
        await w.flush(timeout=20)
        assert w.stats()["retries"] > 0
        await w.close()
        assert s.count("r", "r", "v") == total
    finally:
        s.stop()


EXIT_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from ferrotick.store import InfluxDBConfig, initialize_influxdb

    async def main():
        w = await initialize_influxdb(InfluxDBConfig(
            database=sys.argv[2], url=sys.argv[1], flush_interval=60, batch_size=10000))
        await w.write_points([{"measurement": "e", "fields": {"v": i}, "time": 1_700_000_000_000_000_000 + i}
                              for i in range(500)])

    asyncio.run(main())
    """
)


async def test_interpreter_exit_flushes(influxd, db):
    p = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", EXIT_WRITER, influxd.url, db],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert influxd.count(db, "e", "v") == 500


async def test_v2_request_against_a_stand_in():
    """Not a 2.x server: a loopback stand-in that checks the documented request."""
    srv = ScriptedServer()
    url = await srv.start()
    w = await initialize_influxdb(
        InfluxDBConfig(
            url=url, bucket="bars", org="acme", token="s3cr3t", precision="ms", gzip=True
        )
    )
    await w.write_point("m", {"v": 1.5}, tags={"time": "ok in 2.x"}, time=1_700_000_000_000)
    await w.close()
    (r,) = srv.requests
    assert (r.method, r.path) == ("POST", "/api/v2/write")
    assert r.query == {"org": ["acme"], "bucket": ["bars"], "precision": ["ms"]}
    assert r.headers["authorization"] == "Token s3cr3t"
    assert r.headers["content-encoding"] == "gzip"
    assert r.body == b"m,time=ok\\ in\\ 2.x v=1.5 1700000000000\n"
    with pytest.raises(ConfigError, match="reserves"):
        await w.write_point("m", {"_v": 1})
    await srv.close()


async def test_retry_after_is_honoured():
    srv = ScriptedServer(
        script=[
            (429, {"Retry-After": "1"}, b'{"error":"slow down"}'),
            (503, {"Retry-After": "0.3"}, b"unavailable"),
        ]
    )
    url = await srv.start()
    w = await initialize_influxdb(InfluxDBConfig(database="x", url=url, retry_base_delay=0.01))
    await w.write_point("m", {"v": 1}, time=5)
    t = time.monotonic()
    await w.flush(timeout=10)
    assert time.monotonic() - t >= 1.2
    gaps = [b - a for a, b in zip(srv.times, srv.times[1:], strict=False)]
    assert gaps[0] >= 0.95 and gaps[1] >= 0.28
    assert len(srv.requests) == 3 and w.stats()["retries"] == 2
    assert srv.requests[0].path == "/write" and srv.requests[0].query["db"] == ["x"]
    await w.close()
    await srv.close()


async def test_gzip_body_is_gzip():
    srv = ScriptedServer()
    url = await srv.start()
    w = await initialize_influxdb(InfluxDBConfig(database="x", url=url, gzip=True))
    await w.write_point("m", {"v": 1}, time=1)
    await w.close()
    assert srv.requests[0].body == b"m v=1i 1\n"
    assert gzip.compress(b"") != b""  # (sanity: the stand-in decompressed the body)
    await srv.close()


async def test_metrics_and_health_checks(influxd, db, tmp_path):
    from ferrotick.monitor import AsyncHealthChecker, generate_latest
    from ferrotick.store import SignalManager

    w = await initialize_influxdb(
        InfluxDBConfig(
            database=db,
            url=influxd.url,
            max_buffer_points=5,
            overflow="drop_oldest",
            flush_interval=60,
        )
    )
    await w.write_points(
        [{"measurement": "h", "fields": {"v": i}, "time": T0 + i} for i in range(8)]
    )
    await w.flush()
    down = await initialize_influxdb(InfluxDBConfig(database=db, url="http://127.0.0.1:9"))
    m = SignalManager(tmp_path / "s.sqlite3")
    await m.create_signal_async("BTCUSDT", "BUY", 1, 0.5)
    hc = AsyncHealthChecker(timeout=5)
    w.register_health_check(hc)
    down.register_health_check(hc, "influxdb_down")
    m.register_health_check(hc)
    res = await hc.check_health()
    assert res["checks"] == {"influxdb": True, "influxdb_down": False, "signal_store": True}
    text = generate_latest().decode()
    assert 'ferrotick_influxdb_points_total{outcome="dropped"}' in text
    assert "ferrotick_influxdb_batch_points_count" in text
    assert "ferrotick_influxdb_buffer_points" in text
    assert "ferrotick_signal_store_batch_size_count" in text
    assert "ferrotick_signal_store_ack_seconds_bucket" in text
    await w.close()
    await down.close(timeout=1)
    await m.close()


async def test_unbatched_writes_wait_for_the_server_and_config_yml_section():
    srv = ScriptedServer()
    url = await srv.start()
    cfg = InfluxDBConfig.from_dict(
        {
            "database": "x",
            "url": url,
            "batch_size": 500,
            "flush_interval": 30.0,
            "enable_batching": False,
        }
    )
    w = await initialize_influxdb(cfg)
    await w.write_point("m", {"v": 1}, time=1)
    assert len(srv.requests) == 1  # sent and acknowledged before write_point returned
    await w.write_point("m", {"v": 2}, time=2, batch=False)
    assert len(srv.requests) == 2
    with pytest.raises(ConfigError, match="unknown settings"):
        InfluxDBConfig.from_dict({"database": "x", "batchsize": 5})
    await w.close()
    await srv.close()


async def test_exit_with_the_server_down_does_not_hang():
    code = EXIT_WRITER.replace("batch_size=10000", "batch_size=10000, exit_timeout=0.5")
    t = time.monotonic()
    p = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code, "http://127.0.0.1:9", "x"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert "points lost at exit" in p.stderr
    assert time.monotonic() - t < 10
