"""A Flask app on ferrotick: a service container started on a background loop in
each worker, plain and ``async def`` views, metrics, and a clean stop.

    gunicorn -c gunicorn.conf.py -w 2 --preload app:app
"""

from __future__ import annotations

import asyncio
import logging

from flask import Flask, jsonify

from ferrotick import ServiceContainer, get_task_manager
from ferrotick.flask import Ferrotick, metrics_blueprint

logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
)
logger = logging.getLogger("flask_app")


class Quotes:
    """A service with a managed background task, started once per worker."""

    def __init__(self) -> None:
        self.ticks = 0

    async def initialize(self) -> None:
        get_task_manager().create_task(self._tick(), name="quotes-tick", group="quotes")
        logger.info("quotes service started")

    async def _tick(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0.05)

    async def cleanup(self) -> None:
        report = await get_task_manager().cancel_group("quotes", timeout=5)
        logger.info("quotes service stopped (%d task(s) cancelled)", report.stopped)


container = ServiceContainer(timeout=10)
quotes = container.register_service("quotes", Quotes())

app = Flask(__name__)
ferrotick_ext = Ferrotick(app, container=container, monitors=True)
app.register_blueprint(metrics_blueprint())


@app.get("/quote")
def quote():
    # a plain view: run a coroutine on the worker's loop and wait for it
    async def read() -> int:
        await asyncio.sleep(0)
        return quotes.ticks

    return jsonify(ticks=ferrotick_ext.run(read()))


@app.get("/async-quote")
async def async_quote():
    # an async view runs on the same loop as the service's task
    await asyncio.sleep(0)
    return jsonify(ticks=quotes.ticks, tasks=len(get_task_manager()))
