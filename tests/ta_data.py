"""Series for the indicator tests: random walks and adversarial shapes."""

from __future__ import annotations

import numpy as np


def ohlcv(n: int, seed: int = 1, scale: float = 100.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = scale + np.cumsum(rng.normal(0, scale * 0.01, n))
    spread = np.abs(rng.normal(0, scale * 0.005, n))
    high = close + spread * rng.random(n) + spread
    low = close - spread * rng.random(n) - spread
    open_ = low + (high - low) * rng.random(n)
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def adversarial(n: int = 300) -> dict[str, dict[str, np.ndarray]]:
    base = ohlcv(n, seed=7)
    out = {"walk": base}
    c = np.full(n, 42.5)
    out["constant"] = {"open": c, "high": c, "low": c, "close": c, "volume": np.full(n, 1000.0)}
    z = np.zeros(n)
    out["zeros"] = {"open": z, "high": z, "low": z, "close": z, "volume": z}
    for tag, s in (("huge", 1e9), ("tiny", 1e-9)):
        w = ohlcv(n, seed=11, scale=1.0)
        out[tag] = {k: (v * s if k != "volume" else v) for k, v in w.items()}
    lead = {k: v.copy() for k, v in ohlcv(n, seed=13).items()}
    for k in lead:
        lead[k][:17] = np.nan
    out["leading_nan"] = lead
    return out
