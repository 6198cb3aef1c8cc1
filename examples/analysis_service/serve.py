"""Runs the analysis service under uvicorn: ``python serve.py [--port 8000]``.

uvicorn stops gracefully on SIGTERM, then re-raises the signal so that the process
ends "killed by SIGTERM" (status -15). The SIGTERM handler set here is the one
uvicorn restores before re-raising: it turns a completed graceful stop into exit
status 0, which supervisors read as a clean stop rather than a crash.
"""

from __future__ import annotations

import argparse
import signal
import sys

import uvicorn


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run("app:app", host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
