"""Runs the Python examples of README.md and docs/ as written.

A block runs in a fresh interpreter, as the body of ``__main__`` (so that a job
given to a persistent scheduler store resolves as ``__main__:func``), with
top-level ``await`` allowed as in an asyncio REPL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

RUNNER = textwrap.dedent(
    """
    import ast, asyncio, sys, types
    label = sys.argv[1]
    source = sys.stdin.read()
    code = compile(source, label, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace = sys.modules["__main__"].__dict__
    result = eval(code, namespace)
    if isinstance(result, types.CoroutineType):
        asyncio.run(result)
    """
)


# what a project's pytest configuration would say; the module runs outside any project
PYTEST_OPTIONS = ("-o", "asyncio_default_fixture_loop_scope=function")


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_snippet(
    source: str, label: str, *, cwd: str | os.PathLike[str] | None = None, timeout: float = 120
) -> Outcome:
    """Runs ``source`` in a new interpreter (in ``cwd``); ``label`` names it in tracebacks."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, label],
        input=source,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def run_pytest_module(
    source: str, cwd: str | os.PathLike[str], *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Writes ``source`` as a test module in ``cwd`` and runs pytest on it."""
    path = Path(cwd) / "test_snippet.py"
    path.write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *PYTEST_OPTIONS,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
