"""Rust tracing events reach Python logging under `ferrotick`."""

from __future__ import annotations

import logging

import pytest

import ferrotick
from ferrotick._core import _log


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def capture():
    logger = logging.getLogger("ferrotick")
    old = logger.level
    h = Capture()
    logger.addHandler(h)
    try:
        yield h
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)


def test_events_reach_python_logging(capture):
    logging.getLogger("ferrotick").setLevel(logging.DEBUG)
    assert ferrotick.runtime_stats()["log_level"] == 4
    assert _log("debug", "hello from rust")
    rec = [r for r in capture.records if r.getMessage() == "hello from rust"]
    assert rec and rec[0].name == "ferrotick.runtime" and rec[0].levelno == logging.DEBUG


def test_rust_filter_follows_the_python_level(capture):
    logger = logging.getLogger("ferrotick")
    logger.setLevel(logging.WARNING)
    assert ferrotick.runtime_stats()["log_level"] == 2
    _log("debug", "filtered out")
    _log("info", "filtered out too")
    _log("warning", "kept")
    msgs = [r.getMessage() for r in capture.records]
    assert "kept" in msgs and "filtered out" not in msgs and "filtered out too" not in msgs
    logger.setLevel(logging.ERROR)
    assert ferrotick.runtime_stats()["log_level"] == 1
    # a child logger set lower opens the Rust filter for it
    child = logging.getLogger("ferrotick.runtime")
    child.setLevel(logging.INFO)
    try:
        assert ferrotick.runtime_stats()["log_level"] == 3
    finally:
        child.setLevel(logging.NOTSET)
    assert ferrotick.runtime_stats()["log_level"] == 1


def test_logging_disable_turns_rust_off(capture):
    logging.getLogger("ferrotick").setLevel(logging.DEBUG)
    logging.disable(logging.CRITICAL)
    try:
        assert ferrotick.runtime_stats()["log_level"] == 0
        _log("error", "must not appear")
    finally:
        logging.disable(logging.NOTSET)
    assert ferrotick.runtime_stats()["log_level"] == 4
    assert "must not appear" not in [r.getMessage() for r in capture.records]


def test_events_from_a_worker_thread_and_redaction(capture):
    logging.getLogger("ferrotick").setLevel(logging.INFO)
    assert _log(
        "info", "from worker GET https://h/x?token=abc Authorization: Bearer zzz", from_worker=True
    )
    msgs = [r.getMessage() for r in capture.records]
    hit = [m for m in msgs if m.startswith("from worker")]
    assert hit, msgs
    assert "token=abc" not in hit[0] and "zzz" not in hit[0]


def test_caplog_sees_rust_events(caplog):
    caplog.set_level(logging.DEBUG, logger="ferrotick")
    assert ferrotick.runtime_stats()["log_level"] == 4
    _log("debug", "hello caplog")
    hits = [r for r in caplog.records if r.getMessage() == "hello caplog"]
    assert len(hits) == 1
    assert hits[0].name == "ferrotick.runtime" and hits[0].levelname == "DEBUG"


@pytest.mark.parametrize(
    "level, levelno",
    [
        ("error", logging.ERROR),
        ("warning", logging.WARNING),
        ("info", logging.INFO),
        ("debug", logging.DEBUG),
        ("trace", 5),
    ],
)
def test_levels_map_onto_python_levels(capture, level, levelno):
    logging.getLogger("ferrotick").setLevel(1)
    assert ferrotick.runtime_stats()["log_level"] == 5
    _log(level, f"at {level}")
    hits = [r for r in capture.records if r.getMessage() == f"at {level}"]
    assert len(hits) == 1 and hits[0].levelno == levelno


def test_root_level_drives_the_filter_when_ferrotick_is_unset(capture):
    root = logging.getLogger()
    old_root = root.level
    logging.getLogger("ferrotick").setLevel(logging.NOTSET)
    try:
        root.setLevel(logging.INFO)
        assert ferrotick.runtime_stats()["log_level"] == 3
        _log("info", "via root level")
        _log("debug", "below root level")
        root.setLevel(logging.ERROR)
        assert ferrotick.runtime_stats()["log_level"] == 1
    finally:
        root.setLevel(old_root)
    msgs = [r.getMessage() for r in capture.records]
    assert "via root level" in msgs and "below root level" not in msgs


def test_log_lines_are_redacted(capture):
    logging.getLogger("ferrotick").setLevel(logging.INFO)
    _log(
        "warning",
        "retrying GET https://api.x.test/v3/order?symbol=BTC&signature=s1g api_key=K3Y\n"
        "X-MBX-APIKEY: mbxkey",
    )
    hit = [r.getMessage() for r in capture.records if r.getMessage().startswith("retrying")]
    assert len(hit) == 1
    text = hit[0]
    for secret in ("s1g", "symbol=BTC", "K3Y", "mbxkey"):
        assert secret not in text, text
    assert "https://api.x.test/v3/order" in text


def test_events_from_many_worker_threads(capture):
    import threading

    logging.getLogger("ferrotick").setLevel(logging.INFO)

    def emit(i):
        for k in range(20):
            _log("info", f"worker-event {i}-{k}", from_worker=True)

    threads = [threading.Thread(target=emit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    callers = {t.ident for t in threads} | {threading.get_ident()}
    for t in threads:
        t.join(10)
    recs = [r for r in capture.records if r.getMessage().startswith("worker-event")]
    got = {r.getMessage() for r in recs}
    assert got == {f"worker-event {i}-{k}" for i in range(4) for k in range(20)}
    # emitted on tokio's threads, not on the callers'
    assert not any(r.thread in callers for r in recs)
