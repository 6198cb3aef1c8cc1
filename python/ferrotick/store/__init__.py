"""Durable outputs: the signal store (SQLite, WAL) and the InfluxDB writer.

manager = initialize_async_signal_manager(persistence_file="signals.json")
signal = await manager.create_signal_async("BTCUSDT", "BUY", 1, 0.8)
"""

from __future__ import annotations

from ._influx import (
    InfluxDBConfig,
    InfluxDBWriter,
    get_influxdb_client,
    initialize_influxdb,
)
from ._signals import (
    Signal,
    SignalManager,
    get_signal_manager,
    initialize_async_signal_manager,
)

__all__ = [
    "InfluxDBConfig",
    "InfluxDBWriter",
    "get_influxdb_client",
    "initialize_influxdb",
    "Signal",
    "SignalManager",
    "get_signal_manager",
    "initialize_async_signal_manager",
]
