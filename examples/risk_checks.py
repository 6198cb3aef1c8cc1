"""The risk management service of seed 001's plan: scheduled exposure and drawdown
checks over a live account, alerts when a limit is crossed, and a mitigating action,
on ferrotick's ``AsyncScheduler`` against its simulated exchange.

    python examples/risk_checks.py [--seconds 8] [--time-scale 60] [--exposure-limit 0.35]

Everything runs in this process (no network). The simulated clock runs ``--time-scale``
times faster than the wall clock, and the checks run once per simulated minute (one
wall second at the default scale). What happens:

- a trading task (held by a ``TaskManager`` in group ``trading``) keeps buying BTC;
- the ``exposure`` job (an ``IntervalTrigger``) values every balance at the exchange's
  prices; once BTC passes ``--exposure-limit`` of the equity it fires an alert, stops
  the trading group and sells BTC back to 80 % of the limit; the next run clears it;
- the ``drawdown`` job tracks the equity's peak and alerts past ``--drawdown-limit``;
- a ``CronTrigger`` job prints a status line every two seconds;
- the exchange goes into maintenance for a moment (``--outage``): the checks raise,
  a scheduler listener turns the job errors into a ``risk_data_unavailable`` alert and
  clears it on the next successful run, because a risk service that cannot see the
  account must say so rather than stay silent;
- the scheduler stops cleanly: running jobs finish, then the trading group is cancelled.

The alert sink is a list plus the ``risk`` logger; a real service would send the same
records to a pager or a chat channel.

How ferrotick changes the usual code: the usual risk service runs its checks from a
thread with ``time.sleep`` loops or APScheduler's default executor, silently drops runs
that start more than a second late, and loses track of background tasks at shutdown.
Here jobs are coroutines on the service's own loop, late runs still run, overlapping
runs are bounded (``max_instances``), job outcomes reach listeners as events, the
exchange client is signed and rate limited in Rust, and ``TaskManager`` holds and
cancels the service's tasks by group.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ferrotick import ExchangeError, TaskManager
from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
from ferrotick.scheduler import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    AsyncScheduler,
    CronTrigger,
    IntervalTrigger,
    JobEvent,
)
from ferrotick.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimulatedExchange

log = logging.getLogger("risk")

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
BALANCES = {"USDT": "100000", "BTC": "0.3", "ETH": "5", "SOL": "50"}


@dataclass
class Alert:
    at: float
    rule: str
    state: str  # "firing" or "resolved"
    message: str


@dataclass
class AlertSink:
    """Keeps alerts in a list and logs them; an alert fires once until it clears."""

    t0: float = field(default_factory=time.monotonic)
    events: list[Alert] = field(default_factory=list)
    active: dict[str, str] = field(default_factory=dict)

    def fire(self, rule: str, message: str) -> None:
        if rule in self.active:
            return
        self.active[rule] = message
        self.events.append(Alert(time.monotonic() - self.t0, rule, "firing", message))
        log.warning("ALERT %s: %s", rule, message)

    def clear(self, rule: str, message: str = "") -> None:
        if self.active.pop(rule, None) is None:
            return
        self.events.append(Alert(time.monotonic() - self.t0, rule, "resolved", message))
        log.warning("RESOLVED %s %s", rule, message)


@dataclass
class Snapshot:
    equity: Decimal
    value: dict[str, Decimal]  # per asset, in USDT
    prices: dict[str, Decimal]

    def exposure(self, asset: str) -> Decimal:
        return self.value.get(asset, Decimal(0)) / self.equity


class RiskService:
    """The checks the scheduler runs, over one exchange client."""

    def __init__(
        self,
        client: OptimizedBinanceClient,
        alerts: AlertSink,
        tasks: TaskManager,
        exposure_limit: float,
        drawdown_limit: float,
    ) -> None:
        self.client = client
        self.alerts = alerts
        self.tasks = tasks
        self.exposure_limit = Decimal(str(exposure_limit))
        self.drawdown_limit = Decimal(str(drawdown_limit))
        self.peak = Decimal(0)
        self.max_drawdown = Decimal(0)
        self.last: Snapshot | None = None
        self.reductions = 0
        self.steps: dict[str, Decimal] = {}

    async def load_rules(self) -> None:
        """Each symbol's quantity step (``LOT_SIZE``), for the orders that reduce risk."""
        info = await self.client.get_exchange_info()
        for s in info["symbols"]:
            lot = next(f for f in s["filters"] if f["filterType"] == "LOT_SIZE")
            self.steps[s["symbol"]] = Decimal(lot["stepSize"])

    async def snapshot(self) -> Snapshot:
        account, tickers = await asyncio.gather(
            self.client.get_account_info(), self.client.get_ticker_price()
        )
        prices = {t["symbol"]: Decimal(t["price"]) for t in tickers}
        value: dict[str, Decimal] = {}
        for b in account["balances"]:
            qty = Decimal(b["free"]) + Decimal(b["locked"])
            price = Decimal(1) if b["asset"] == "USDT" else prices.get(b["asset"] + "USDT")
            if qty and price is not None:
                value[b["asset"]] = qty * price
        self.last = Snapshot(sum(value.values(), Decimal(0)), value, prices)
        return self.last

    async def check_exposure(self) -> dict[str, float]:
        snap = await self.snapshot()
        for asset in snap.value:
            if asset == "USDT":
                continue
            share = snap.exposure(asset)
            rule = f"exposure:{asset}"
            if share > self.exposure_limit:
                self.alerts.fire(
                    rule, f"{asset} is {share:.1%} of equity > {self.exposure_limit:.0%}"
                )
                await self.reduce(asset, snap)
            else:
                self.alerts.clear(rule, f"{asset} back to {share:.1%}")
        return {a: float(snap.exposure(a)) for a in snap.value}

    async def reduce(self, asset: str, snap: Snapshot) -> None:
        """Stops new buying and sells ``asset`` down to 80 % of the limit."""
        report = await self.tasks.cancel_group("trading", timeout=2)
        target = snap.equity * self.exposure_limit * Decimal("0.8")
        excess = snap.value[asset] - target
        symbol = asset + "USDT"
        step = self.steps[symbol]
        qty = (excess / snap.prices[symbol] / step).to_integral_value(ROUND_DOWN) * step
        order = await self.client.create_order(
            symbol=symbol, side="SELL", type="MARKET", quantity=qty.normalize()
        )
        self.reductions += 1
        log.warning(
            "risk action: %d trading task(s) stopped, sold %s %s (%s)",
            report.stopped,
            order["executedQty"],
            asset,
            order["status"],
        )

    async def check_drawdown(self) -> float:
        snap = await self.snapshot()
        self.peak = max(self.peak, snap.equity)
        dd = (self.peak - snap.equity) / self.peak
        self.max_drawdown = max(self.max_drawdown, dd)
        if dd > self.drawdown_limit:
            self.alerts.fire(
                "drawdown", f"equity {dd:.2%} below its peak > {self.drawdown_limit:.1%}"
            )
        else:
            self.alerts.clear("drawdown")
        return float(dd)

    def status_line(self) -> None:
        s = self.last
        if s is not None:
            btc = s.exposure("BTC")
            print(
                f"  status: equity {s.equity:,.0f} USDT, BTC {btc:.1%}, "
                f"max drawdown {self.max_drawdown:.2%}, alerts active: {sorted(self.alerts.active)}"
            )


async def trade(client: OptimizedBinanceClient, every: float, quote: int) -> None:
    """The strategy the risk service watches: buys BTC for ``quote`` USDT every ``every`` s."""
    while True:
        try:
            await client.create_order(
                symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty=quote
            )
        except ExchangeError as e:
            if e.code != -2010:  # insufficient balance: nothing left to buy with
                raise
            log.warning("trading: out of USDT, stopped buying")
            return
        await asyncio.sleep(every)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0, help="how long the service runs")
    p.add_argument("--time-scale", type=float, default=60.0, help="simulated s per wall s")
    p.add_argument("--exposure-limit", type=float, default=0.35, help="max share of one asset")
    p.add_argument("--drawdown-limit", type=float, default=0.02, help="max fall from the peak")
    p.add_argument(
        "--outage",
        type=float,
        default=1.5,
        help="seconds of exchange maintenance half-way through (0: none)",
    )
    return p.parse_args(argv)


def listener_for(alerts: AlertSink, counts: dict[str, int]) -> Any:
    def on_event(ev: JobEvent) -> None:
        if ev.job_id not in ("exposure", "drawdown"):
            return
        if ev.code == EVENT_JOB_ERROR:
            counts["errors"] += 1
            alerts.fire("risk_data_unavailable", f"{ev.job_id} check failed: {ev.exception}")
        elif ev.code == EVENT_JOB_EXECUTED:
            counts["runs"] += 1
            alerts.clear("risk_data_unavailable", f"{ev.job_id} check ran")

    return on_event


async def run(args: argparse.Namespace) -> int:
    minute = 60.0 / args.time_scale  # one simulated minute, in wall seconds
    alerts = AlertSink()
    counts = {"runs": 0, "errors": 0}
    async with SimulatedExchange(
        SYMBOLS, time_scale=args.time_scale, balances=BALANCES, book_levels=500
    ) as ex:
        config = BinanceConfig(
            DEFAULT_API_KEY,
            DEFAULT_API_SECRET,
            base_url=ex.base_url,
            max_retries=1,
            retry_delay=0.05,
            timeout=2.0,
        )
        async with OptimizedBinanceClient(config) as client:
            tasks = TaskManager()
            risk = RiskService(client, alerts, tasks, args.exposure_limit, args.drawdown_limit)
            await risk.load_rules()
            await risk.check_exposure()
            print(
                f"start: equity {risk.last.equity:,.0f} USDT, BTC {risk.last.exposure('BTC'):.1%}"
                f" of it; limits: exposure {args.exposure_limit:.0%}, drawdown "
                f"{args.drawdown_limit:.0%}; checks every {minute:g} s (1 simulated minute)"
            )
            tasks.create_task(trade(client, minute / 4, 8000), name="buy-btc", group="trading")

            scheduler = AsyncScheduler(job_defaults={"max_instances": 1, "coalesce": True})
            scheduler.add_listener(
                listener_for(alerts, counts), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
            )
            scheduler.add_job(risk.check_exposure, IntervalTrigger(seconds=minute), id="exposure")
            scheduler.add_job(risk.check_drawdown, IntervalTrigger(seconds=minute), id="drawdown")
            scheduler.add_job(risk.status_line, CronTrigger(second="*/2"), id="status")
            await scheduler.start()
            try:
                if args.outage > 0:
                    await asyncio.sleep(args.seconds / 2)
                    print(f"  exchange: maintenance for {args.outage:g} s")
                    ex.set_faults(maintenance=True)
                    await asyncio.sleep(args.outage)
                    ex.set_faults(maintenance=False)
                    await asyncio.sleep(max(args.seconds / 2 - args.outage, 2 * minute))
                else:
                    await asyncio.sleep(args.seconds)
            finally:
                await scheduler.stop(wait=True, timeout=5)
                report = await tasks.shutdown(timeout=2)
            jobs = {j.id: j.status for j in scheduler.get_jobs()}
            print(
                "jobs: "
                + ", ".join(f"{k} runs={s.runs} errors={s.errors}" for k, s in jobs.items())
                + f"; scheduler stopped (running={scheduler.running}), "
                f"{report.requested} task(s) left to cancel"
            )

    for a in alerts.events:
        print(f"  t={a.at:5.2f}s {a.state.upper():8s} {a.rule}: {a.message}")
    fired = {a.rule for a in alerts.events if a.state == "firing"}
    resolved = {a.rule for a in alerts.events if a.state == "resolved"}
    print(
        f"alerts: {len(fired)} fired, {len(fired & resolved)} resolved, "
        f"{len(alerts.active)} still active {sorted(alerts.active)}; "
        f"{risk.reductions} risk reduction(s); max drawdown {risk.max_drawdown:.2%}"
    )
    ok = "exposure:BTC" in fired & resolved and risk.reductions > 0
    if args.outage > 0:
        ok = ok and "risk_data_unavailable" in fired & resolved
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    # a failing check reaches the listener below, which raises an alert; the
    # scheduler's own error log (with the traceback) would repeat it
    logging.getLogger("ferrotick.scheduler").setLevel(logging.CRITICAL)
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
