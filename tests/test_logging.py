"""Rust tracing events reach Python logging under `ferrotick`."""

from __future__ import annotations

import logging

import pytest

import ferrotick
from ferrotick._core import _log


class Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
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
