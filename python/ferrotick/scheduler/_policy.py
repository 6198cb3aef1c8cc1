"""When a due job runs: the misfire, coalesce, backlog, jitter and max_instances rules
as pure functions of a job's state and the time. They read a job and return a
decision; the scheduler applies it (moves the job on, counts, logs, reports, starts
the run). Nothing here touches a loop, a store or a listener.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .triggers import jitter_offset

# A backlog run one firing after the other (coalesce=False) holds at most this many
BACKLOG_LIMIT = 10_000

# plain_next's answer for a firing that is not of the common case
NOT_PLAIN: Any = object()


class Plan(NamedTuple):
    """What a due job does now."""

    # run times (nominal + jitter) to run, in order, one after the other in one
    # instance; empty when every one was missed
    runs: list[float]
    # the nominal fire times of ``runs``, position by position
    nominals: list[float]
    # (run time, lateness) of the firings later than misfire_grace_time
    missed: list[tuple[float, float]]
    # max_instances is reached: ``runs`` are skipped, not run
    busy: bool
    # a backlog collapsed into its latest firing (coalesce=True)
    coalesced: bool
    # the job's next nominal fire time (None: the trigger has no more)
    next_nominal: float | None


def plain_next(job: Any, first: float, horizon: float) -> Any:
    """The common case: no misfire grace, no jitter, a free instance slot, and no
    backlog (the trigger's next fire time after ``first`` is after ``horizon``, or
    there is none). Then the firing at ``first`` runs at once and the job moves on
    to the returned next nominal time (a float or None); anything else returns
    NOT_PLAIN and goes through ``plan``, which decides the same for this case."""
    trigger = job.trigger
    if job.misfire_grace_time is not None or job._running >= job.max_instances or trigger.jitter:
        return NOT_PLAIN
    after = trigger._next_unix(first)
    if after is not None and after <= horizon:
        return NOT_PLAIN
    return after


def plan(job: Any, now: float) -> Plan | None:
    """The decision for ``job``, whose next nominal fire time is due at ``now``
    (None when it has none).

    A backlog (fire times after the first that are due too) collapses into its
    latest firing with ``coalesce``, and otherwise runs firing after firing, up to
    BACKLOG_LIMIT of them, in one instance (as APScheduler does, instead of counting
    all but the first as skipped by max_instances). Each firing runs at its nominal
    time plus the trigger's jitter for the job; one later than
    ``misfire_grace_time`` (None: never too late) is missed. What is left is
    skipped when ``max_instances`` runs are going on."""
    first = job._next_nominal
    if first is None:
        return None
    trigger = job.trigger
    coalesced = False
    after_first = trigger._next_unix(first)
    if after_first is None or after_first > now:
        nominals = [first]
        next_nominal = after_first
    elif job.coalesce:
        last = trigger._last_unix_at_or_before(now, first)
        last = first if last is None or last < first else last
        coalesced = last > first
        nominals = [last]
        next_nominal = trigger._next_unix(last)
    else:
        nominals = []
        t: float | None = first
        while t is not None and t <= now and len(nominals) < BACKLOG_LIMIT:
            nominals.append(t)
            t = trigger._next_unix(t)
        next_nominal = t
    jitter = trigger.jitter
    runs = [n + jitter_offset(job.id, n, jitter) for n in nominals] if jitter else nominals
    missed: list[tuple[float, float]] = []
    grace = job.misfire_grace_time
    if grace is not None:
        kept: list[float] = []
        kept_nominals: list[float] = []
        for nominal, scheduled in zip(nominals, runs, strict=True):
            lateness = now - scheduled
            if lateness > grace:
                missed.append((scheduled, lateness))
            else:
                kept.append(scheduled)
                kept_nominals.append(nominal)
        runs, nominals = kept, kept_nominals
    busy = bool(runs) and job._running >= job.max_instances
    return Plan(runs, nominals, missed, busy, coalesced, next_nominal)
