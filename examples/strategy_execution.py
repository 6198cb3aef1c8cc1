"""The strategy execution service of seed 001's plan: multi-timeframe signals turned
into orders on ferrotick's simulated exchange, sized from the account, rounded to the
symbol's filters, sent as one batch, and checked against the exchange's trade records.

    python examples/strategy_execution.py [--risk 0.02] [--slippage 0.002]

Everything runs in this process (no network). The steps:

1. klines of every symbol, fetched concurrently within the client's weight budget, go
   through ``MultiTimeframeAnalyzer`` (5m/15m/1h): a BUY or SELL when the timeframes
   agree;
2. each signal becomes a LIMIT IOC order: ``--risk`` of the free quote balance (BUY) or
   of the free base balance (SELL), scaled by the signal's confidence, priced
   ``--slippage`` through the best price of the book; quantity and price are rounded
   to ``LOT_SIZE`` and ``PRICE_FILTER`` from ``/exchangeInfo``;
3. the batch carries one more order, below the symbol's ``NOTIONAL`` filter on purpose,
   to show how an exchange rejection is reported: as that order's entry, while the
   other orders of the batch go through;
4. ``create_batch_orders`` signs and sends the orders concurrently with the simulator's
   default key pair; every accepted order is read back with ``get_order`` and its fills
   with ``/myTrades``, and the executed quantity must match the trades.

How ferrotick changes the usual code: the usual executor loops over orders with a
signed aiohttp request each, wraps each in try/except so that one rejection does not
abort the rest, resynchronises the clock by hand after -1021, and may send an order
twice when a timeout hides whether it was placed. Here the signature, the clock offset,
the weight and order-rate budgets and the lookup of orders of unknown outcome (by their
client order id, never re-sent) are in the Rust client; ``create_batch_orders`` returns
one entry per order, the exchange's answer or the ``ExchangeError`` it met.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from ferrotick import ExchangeError
from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
from ferrotick.pipeline import MarketData, MultiTimeframeAnalyzer
from ferrotick.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimulatedExchange

SYMBOLS = [
    "BTCUSDT",
    "ETHUSDT",
    "BNBUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "ADAUSDT",
    "DOGEUSDT",
    "LTCUSDT",
    "DOTUSDT",
    "LINKUSDT",
    "AVAXUSDT",
]
# starting balances: quote for buying, some of each base asset for selling
BALANCES = {
    "USDT": "100000",
    "BTC": "1",
    "ETH": "20",
    "BNB": "100",
    "SOL": "300",
    "XRP": "80000",
    "ADA": "100000",
    "DOGE": "300000",
    "LTC": "500",
    "DOT": "6000",
    "LINK": "3000",
    "AVAX": "1200",
}


@dataclass(frozen=True)
class Rules:
    """One symbol's trading rules, from ``/exchangeInfo``."""

    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    min_notional: Decimal

    @classmethod
    def from_info(cls, s: dict[str, Any]) -> Rules:
        f = {x["filterType"]: x for x in s["filters"]}
        return cls(
            base=s["baseAsset"],
            quote=s["quoteAsset"],
            tick=Decimal(f["PRICE_FILTER"]["tickSize"]),
            step=Decimal(f["LOT_SIZE"]["stepSize"]),
            min_qty=Decimal(f["LOT_SIZE"]["minQty"]),
            min_notional=Decimal(f["NOTIONAL"]["minNotional"]),
        )

    def price(self, p: Decimal, side: str) -> Decimal:
        """A multiple of the tick, never worse than ``p`` for the order's side."""
        rounding = ROUND_FLOOR if side == "BUY" else ROUND_CEILING
        return ((p / self.tick).to_integral_value(rounding) * self.tick).normalize()

    def qty(self, q: Decimal) -> Decimal:
        """A multiple of the step, rounded down."""
        return ((q / self.step).to_integral_value(ROUND_FLOOR) * self.step).normalize()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--risk", type=float, default=0.02, help="share of a balance per order")
    p.add_argument("--slippage", type=float, default=0.002, help="price limit past the book")
    p.add_argument("--bars", type=int, default=1500, help="1m klines per symbol")
    p.add_argument("--seed", type=int, default=0, help="the simulated market's seed")
    p.add_argument(
        "--unknown-rate",
        type=float,
        default=0.0,
        help="share of order requests whose answer the simulator withholds (a timeout "
        "after the order reached the book): the client looks them up instead of resending",
    )
    return p.parse_args(argv)


async def signals_of(client: OptimizedBinanceClient, bars: int) -> list[dict[str, Any]]:
    klines = await client.get_multiple_klines(SYMBOLS, "1m", limit=bars)
    mtf = MultiTimeframeAnalyzer(["5m", "15m", "1h"])
    results = await asyncio.gather(
        *(mtf.analyze(MarketData.from_klines(k)) for k in klines.values())
    )
    return [s for r in results for s in r.signals if s["signal_type"] in ("BUY", "SELL")]


def size_order(
    sig: dict[str, Any],
    rules: Rules,
    free: dict[str, Decimal],
    book: dict[str, Any],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """A LIMIT IOC order for one signal, within the filters."""
    side = sig["signal_type"]
    weight = Decimal(str(args.risk)) * Decimal(str(min(max(sig["confidence"], 0.0), 1.0)))
    slip = Decimal(str(args.slippage))
    if side == "BUY":
        best = Decimal(book["asks"][0][0])
        price = rules.price(best * (1 + slip), side)
        qty = rules.qty(free[rules.quote] * weight / price)
    else:
        best = Decimal(book["bids"][0][0])
        price = rules.price(best * (1 - slip), side)
        qty = rules.qty(free[rules.base] * weight)
    return {
        "symbol": sig["symbol"],
        "side": side,
        "type": "LIMIT",
        "timeInForce": "IOC",
        "quantity": qty,
        "price": price,
    }


async def check_fill(client: OptimizedBinanceClient, placed: dict[str, Any]) -> tuple[str, Decimal]:
    """The order as the exchange now reports it and the quantity its trades executed."""
    sym = placed["symbol"]
    order = await client.get_order(sym, order_id=placed["orderId"])
    trades = await client.request(
        "GET", "/api/v3/myTrades", {"symbol": sym, "orderId": placed["orderId"]}, signed=True
    )
    executed = Decimal(order["executedQty"])
    traded = sum((Decimal(t["qty"]) for t in trades), Decimal(0))
    if traded != executed:
        raise AssertionError(f"{sym}: executedQty {executed} but trades sum to {traded}")
    if not trades:
        return f"{order['status']} nothing executed", traded
    avg = sum(Decimal(t["price"]) * Decimal(t["qty"]) for t in trades) / traded
    n = len(trades)
    line = f"{order['status']} {_num(executed)} avg {avg:.6g} ({n} trade{'s' if n > 1 else ''})"
    return line, traded


def _num(d: Decimal) -> str:
    return f"{d.normalize():f}"


def balances(account: dict[str, Any]) -> dict[str, Decimal]:
    return {b["asset"]: Decimal(b["free"]) for b in account["balances"]}


async def run(args: argparse.Namespace) -> int:
    async with SimulatedExchange(SYMBOLS, seed=args.seed, balances=BALANCES, book_levels=200) as ex:
        config = BinanceConfig(
            DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=ex.base_url, ws_url=ex.ws_url
        )
        async with OptimizedBinanceClient(config) as client:
            signals = await signals_of(client, args.bars)
            print(
                f"signals: {len(signals)} of {len(SYMBOLS)} symbols ("
                + ", ".join(f"{s['signal_type']} {s['symbol']}" for s in signals)
                + ")"
            )
            if not signals:
                print("FAILED: no signal to trade (try another --seed)")
                return 1

            info = await client.get_exchange_info()
            rules = {s["symbol"]: Rules.from_info(s) for s in info["symbols"]}
            before = balances(await client.get_account_info())
            books = await asyncio.gather(
                *(client.get_order_book(s["symbol"], limit=5) for s in signals)
            )
            orders = [
                size_order(s, rules[s["symbol"]], before, b, args)
                for s, b in zip(signals, books, strict=True)
            ]
            dust = rules[signals[0]["symbol"]]
            orders.append(
                {
                    "symbol": signals[0]["symbol"],
                    "side": "BUY",
                    "type": "MARKET",
                    "quantity": dust.min_qty.normalize(),  # worth less than min_notional
                }
            )

            ex.set_faults(unknown_status_rate=args.unknown_rate)
            answers = await client.create_batch_orders(orders)
            ex.set_faults(unknown_status_rate=0.0)

            filled = rejected = 0
            codes: set[int | None] = set()
            for o, a in zip(orders, answers, strict=True):
                head = f"  {o['side']:4s} {o['symbol']:9s} {o['type']:6s} qty={o['quantity']}"
                if "price" in o:
                    head += f" @{o['price']}"
                if isinstance(a, ExchangeError):
                    rejected += 1
                    codes.add(a.code)
                    print(f"{head} -> REJECTED {a.code} {a.msg}")
                    continue
                status, executed = await check_fill(client, a)
                filled += executed > 0
                print(f"{head} -> {status}")

            after = balances(await client.get_account_info())
            moved = sorted(a for a in after if after[a] != before.get(a))
            print(
                "balances: "
                + ", ".join(
                    f"{a} {_num(before.get(a, Decimal(0)))} -> {_num(after[a])}" for a in moved[:6]
                )
                + (" ..." if len(moved) > 6 else "")
            )
            print(
                f"orders: {len(orders)} sent, {filled} filled, {rejected} rejected "
                f"(codes {sorted(codes, key=str)}), {client.stats().get('order_lookups', 0)} "
                "lookups of unknown outcome"
            )
    return 0 if filled else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
