"""The README's Python examples run as written.

Every ```python block runs in a fresh interpreter (top-level ``await`` allowed, as
in an asyncio REPL) against the installed package. A block that needs names from
its surroundings (a server URL, an app, the user's own jobs) is marked
```python fragment and is only compiled.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
from snippets import run_snippet

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python( fragment)?\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[int, bool, str]]:
    text = README.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, bool(m.group(1)), m.group(2))
        for m in BLOCK.finditer(text)
    ]


def test_the_readme_has_runnable_examples():
    blocks = _blocks()
    assert blocks and sum(not fragment for _, fragment, _ in blocks) >= 1


@pytest.mark.parametrize(("line", "fragment", "source"), _blocks(), ids=lambda v: str(v)[:20])
def test_readme_example(line, fragment, source):
    compile(source, f"README.md:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if fragment:
        return
    outcome = run_snippet(source, f"README.md:{line}")
    assert outcome.returncode == 0, f"README.md:{line}\n{outcome.stderr[-3000:]}"


def test_the_benchmark_table_matches_results_md():
    """README's headline table is what ``benches/run.py --readme`` makes of RESULTS.md."""
    import importlib.util

    path = README.parent / "benches" / "run.py"
    spec = importlib.util.spec_from_file_location("bench_runner", path)
    assert spec and spec.loader
    runner = importlib.util.module_from_spec(spec)
    sys.modules["bench_runner"] = runner  # its dataclasses look their module up
    try:
        spec.loader.exec_module(runner)
    finally:
        del sys.modules["bench_runner"]
    text = README.read_text()
    start, end = text.index(runner.MARKERS[0]), text.index(runner.MARKERS[1])
    block = text[start : end + len(runner.MARKERS[1])]
    assert block == runner.headline_markdown(README.parent / "benches" / "RESULTS.md")
    assert block.count("\n| ") >= 10
