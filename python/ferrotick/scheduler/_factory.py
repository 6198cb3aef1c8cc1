"""The seed's two schedulers on ``AsyncScheduler``, and the factory starting them.

```python
from ferrotick import ServiceContainer, initialize_schedulers, cleanup_schedulers

container = ServiceContainer()
await initialize_schedulers(container, db_factory=get_db_session)
...
await cleanup_schedulers(container)
```

``ToolEffectivenessScheduler`` runs ``calculate_hourly_metrics`` every hour on the
hour, ``calculate_daily_metrics`` at 00:30, ``calculate_weekly_metrics`` on Mondays
at 01:00 and ``calculate_monthly_metrics`` on the 1st at 02:00, in UTC unless
``timezone=`` says otherwise. The hooks do nothing by default: subclass and
override them.

``ReportScheduler(db_factory)`` generates each report type that has subscribers
(``daily`` 06:00, ``weekly`` Monday 06:00, ``monthly`` the 1st 06:00 by default) in
a fresh session from ``db_factory()`` (closed afterwards when it has ``close()``)
through the overridable ``generate_report(report_type, db)``, then hands the report
to every subscriber of that type (plain or async callables; one failing subscriber
does not stop the others).

Both have the seed's ``start()`` (True when it started, False with a warning when
already running) and ``stop()`` (True when it stopped, False when not running),
plus ``initialize()``/``cleanup()`` aliases so that a ``ServiceContainer`` can start
and stop them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from .._errors import ConfigError
from ._scheduler import AsyncScheduler
from .triggers import BaseTrigger, daily, hourly, monthly, weekly

logger = logging.getLogger("ferrotick.scheduler")

__all__ = [
    "ReportScheduler",
    "ToolEffectivenessScheduler",
    "cleanup_schedulers",
    "initialize_schedulers",
]

EFFECTIVENESS = "effectiveness_scheduler"
REPORTS = "report_scheduler"
SCHEDULER_NAMES = (EFFECTIVENESS, REPORTS)


class _SeedScheduler:
    """start()/stop() around an AsyncScheduler whose jobs ``_jobs()`` lists."""

    label = "scheduler"

    def __init__(self, timezone: Any = "UTC") -> None:
        self.timezone = timezone
        self.scheduler: AsyncScheduler | None = None
        self.logger = logging.getLogger(type(self).__module__ + "." + type(self).__name__)

    @property
    def running(self) -> bool:
        return self.scheduler is not None and self.scheduler.running

    def _jobs(self) -> dict[str, tuple[Callable[[], Any], BaseTrigger]]:
        raise NotImplementedError

    async def start(self) -> bool:
        if self.running:
            self.logger.warning("%s already running", self.label)
            return False
        scheduler = AsyncScheduler(timezone=self.timezone)
        for job_id, (func, trigger) in self._jobs().items():
            scheduler.add_job(func, trigger, id=job_id, coalesce=True, max_instances=1)
        await scheduler.start()
        self.scheduler = scheduler
        self.logger.info("%s started", self.label)
        return True

    async def stop(self, timeout: float | None = 10.0) -> bool:
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is None or not scheduler.running:
            return False
        await scheduler.stop(wait=True, timeout=timeout)
        self.logger.info("%s stopped", self.label)
        return True

    async def initialize(self) -> None:
        await self.start()

    async def cleanup(self) -> None:
        await self.stop()

    @property
    def scheduled_tasks(self) -> dict[str, Any]:
        """``{job id: next run time}`` while running."""
        if self.scheduler is None:
            return {}
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}


class ToolEffectivenessScheduler(_SeedScheduler):
    """Hourly, daily, weekly and monthly effectiveness metrics (see the module doc)."""

    label = "tool effectiveness scheduler"

    def _jobs(self) -> dict[str, tuple[Callable[[], Any], BaseTrigger]]:
        return {
            "hourly": (self.calculate_hourly_metrics, hourly(minute=0)),
            "daily": (self.calculate_daily_metrics, daily(at="00:30")),
            "weekly": (self.calculate_weekly_metrics, weekly("monday", at="01:00")),
            "monthly": (self.calculate_monthly_metrics, monthly(1, at="02:00")),
        }

    async def calculate_hourly_metrics(self) -> None:
        """Override: runs every hour on the hour."""

    async def calculate_daily_metrics(self) -> None:
        """Override: runs every day at 00:30."""

    async def calculate_weekly_metrics(self) -> None:
        """Override: runs every Monday at 01:00."""

    async def calculate_monthly_metrics(self) -> None:
        """Override: runs on the 1st of every month at 02:00."""


def _default_report_triggers() -> dict[str, BaseTrigger]:
    return {
        "daily": daily(at="06:00"),
        "weekly": weekly("monday", at="06:00"),
        "monthly": monthly(1, at="06:00"),
    }


class ReportScheduler(_SeedScheduler):
    """Reports generated on a schedule and sent to subscribers (see the module doc)."""

    label = "report scheduler"

    def __init__(
        self,
        db_factory: Callable[[], Any],
        *,
        timezone: Any = "UTC",
        schedules: dict[str, BaseTrigger] | None = None,
    ) -> None:
        if not callable(db_factory):
            raise TypeError(f"db_factory: expected a callable, got {type(db_factory).__name__}")
        super().__init__(timezone)
        self.db_factory = db_factory
        self.schedules = dict(schedules) if schedules is not None else _default_report_triggers()
        self._subscribers: dict[str, list[Callable[[Any], Any]]] = {}

    def subscribe(self, report_type: str, subscriber: Callable[[Any], Any]) -> None:
        """Sends every ``report_type`` report to ``subscriber(report)``. Subscribing
        while running takes effect at the next ``start()``."""
        if report_type not in self.schedules:
            raise ConfigError(
                f"report_type: unknown report type {report_type!r} (have {sorted(self.schedules)})"
            )
        if not callable(subscriber):
            raise TypeError(f"subscriber: expected a callable, got {type(subscriber).__name__}")
        self._subscribers.setdefault(report_type, []).append(subscriber)

    def unsubscribe(self, report_type: str, subscriber: Callable[[Any], Any]) -> None:
        subs = self._subscribers.get(report_type, [])
        if subscriber in subs:
            subs.remove(subscriber)

    def _jobs(self) -> dict[str, tuple[Callable[[], Any], BaseTrigger]]:
        jobs = {}
        for report_type, trigger in self.schedules.items():
            if self._subscribers.get(report_type):
                jobs[f"report-{report_type}"] = (self._job_for(report_type), trigger)
        return jobs

    def _job_for(self, report_type: str) -> Callable[[], Any]:
        async def job() -> None:
            await self.run_report(report_type)

        job.__qualname__ = f"ReportScheduler.report_{report_type}"
        return job

    async def generate_report(self, report_type: str, db: Any) -> Any:
        """Override: builds the report from ``db``. By default a small dict."""
        import datetime as _dt

        return {"report_type": report_type, "generated_at": _dt.datetime.now(_dt.timezone.utc)}

    async def run_report(self, report_type: str) -> Any:
        """Generates ``report_type`` now and sends it to its subscribers."""
        db = self.db_factory()
        if inspect.isawaitable(db):
            db = await db
        try:
            report = await self.generate_report(report_type, db)
        finally:
            await _close(db)
        for subscriber in list(self._subscribers.get(report_type, [])):
            await self._deliver(report_type, subscriber, report)
        return report

    async def _deliver(self, report_type: str, subscriber: Any, report: Any) -> None:
        try:
            result = subscriber(report)
            if inspect.isawaitable(result):
                await result
        except Exception:  # one subscriber's failure must not stop the others
            self.logger.exception("%s report: a subscriber failed", report_type)


async def _close(db: Any) -> None:
    close = getattr(db, "close", None)
    if callable(close):
        result = close()
        if inspect.isawaitable(result):
            await result


async def initialize_schedulers(
    container: Any,
    db_factory: Callable[[], Any] | None = None,
    *,
    names: Any = None,
    timezone: Any = "UTC",
) -> dict[str, Any]:
    """Creates, registers in ``container`` and starts the effectiveness scheduler
    and, when ``db_factory`` is given, the report scheduler. ``names`` limits which
    (``"effectiveness_scheduler"``, ``"report_scheduler"``). Returns them by name."""
    wanted = _wanted(names)
    made: dict[str, Any] = {}
    if EFFECTIVENESS in wanted:
        made[EFFECTIVENESS] = ToolEffectivenessScheduler(timezone=timezone)
    if REPORTS in wanted and db_factory is not None:
        made[REPORTS] = ReportScheduler(db_factory, timezone=timezone)
    elif REPORTS in wanted:
        logger.info("report scheduler skipped: no db_factory")
    started: list[Any] = []
    try:
        for name, scheduler in made.items():
            if name not in container:
                container.register_service(name, scheduler)
            scheduler = container.get(name)
            await scheduler.start()
            started.append(scheduler)
    except BaseException:
        for scheduler in reversed(started):
            await scheduler.stop()
        raise
    logger.info("schedulers initialized and started: %s", ", ".join(made) or "none")
    return {name: container.get(name) for name in made}


def _wanted(names: Any) -> tuple[str, ...]:
    if names is None or names is True:
        return SCHEDULER_NAMES
    if names is False:
        return ()
    wanted = (names,) if isinstance(names, str) else tuple(names)
    unknown = [n for n in wanted if n not in SCHEDULER_NAMES]
    if unknown:
        raise ConfigError(f"names: unknown scheduler(s) {unknown} (have {list(SCHEDULER_NAMES)})")
    return wanted


async def cleanup_schedulers(container: Any) -> None:
    """Stops the schedulers ``initialize_schedulers`` registered (reports first)."""
    for name in reversed(SCHEDULER_NAMES):
        if name in container:
            try:
                await container.get(name).stop()
            except Exception:  # the other scheduler must still stop
                logger.exception("stopping %s failed", name)
    logger.info("schedulers stopped")
