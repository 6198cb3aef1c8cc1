"""The documentation site's Python examples run as written, and each migration
"before" whose library is installed prints what its "after" prints.

Every ```python block of docs/ runs in a fresh interpreter in an empty
directory (see ``snippets.py``), unless an HTML comment on the line above the
fence says otherwise:

- ``<!-- fragment -->``: only compiled (code that needs the user's own app,
  server or configuration around it);
- ``<!-- pytest -->``: a test module, run by pytest with ferrotick's plugin;
- ``<!-- after: ID -->``: runs, and is the "after" half of pair ID;
- ``<!-- before: ID -->``: the "before" half, only compiled (hand-written
  code from the modules ferrotick replaces, which are not installed here);
- ``<!-- before: ID runs-with=MODULE[,MODULE] -->``: the "before" half, run
  when those modules import (``python`` for the standard library alone);
  its standard output must equal the after's.

A block that runs must finish with status 0, and one that is not a "before"
must leave nothing alarming on stderr (warnings, unawaited coroutines,
destroyed tasks, unretrieved task exceptions, unclosed resources). Logged
errors are fine: some examples show how a failure is reported.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from snippets import Outcome, run_pytest_module, run_snippet

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(
    r"^(?:(?P<mindent>[ ]*)<!--\s*(?P<marker>[^\n]*?)\s*-->\n)?"
    r"(?P<indent>[ ]*)```python(?P<attrs>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$",
    re.S | re.M,
)
ANY_PYTHON_FENCE = re.compile(r"^[ ]*```python", re.M)
MARKER = re.compile(
    r"^(?:(?P<kind>fragment|pytest)"
    r"|(?P<role>before|after):\s*(?P<id>[\w-]+)(?:\s+runs-with=(?P<mods>[\w.,]+))?)$"
)
ALARMS = (
    "Warning:",
    "never awaited",
    "was destroyed but it is pending",
    "exception was never retrieved",
    "Unclosed",
)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    kind: str  # "run", "fragment", "pytest", "before", "after"
    pair: str | None
    runs_with: tuple[str, ...]
    source: str

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def _unindent(body: str, indent: str) -> str:
    lines = body.splitlines(keepends=True)
    return "".join(line[len(indent) :] if line.startswith(indent) else line for line in lines)


def _parse_marker(marker: str | None, where: str) -> tuple[str, str | None, tuple[str, ...]]:
    if marker is None:
        return "run", None, ()
    m = MARKER.match(marker)
    if m is None:
        raise ValueError(f"{where}: unknown snippet marker <!-- {marker} -->")
    if m["kind"]:
        return m["kind"], None, ()
    mods = tuple(m["mods"].split(",")) if m["mods"] else ()
    if mods and m["role"] == "after":
        raise ValueError(f"{where}: runs-with belongs on a 'before'")
    return m["role"], m["id"], mods


@cache
def blocks() -> tuple[Block, ...]:
    found = []
    for path in sorted(DOCS.rglob("*.md")):
        page = path.relative_to(DOCS).as_posix()
        text = path.read_text()
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start("indent")) + 1
            where = f"docs/{page}:{line}"
            kind, pair, mods = _parse_marker(m["marker"], where)
            source = _unindent(m["body"], m["indent"])
            found.append(Block(page, line, kind, pair, mods, source))
    return tuple(found)


def _pairs() -> dict[str, dict[str, Block]]:
    pairs: dict[str, dict[str, Block]] = {}
    for b in blocks():
        if b.pair is not None:
            halves = pairs.setdefault(b.pair, {})
            assert b.kind not in halves, f"{b.where}: a second {b.kind!r} for pair {b.pair!r}"
            halves[b.kind] = b
    return pairs


def _compared() -> list[str]:
    return [pid for pid, halves in _pairs().items() if halves["before"].runs_with]


@cache
def _run(block: Block, tmp_root: str) -> Outcome:
    workdir = Path(tmp_root) / f"{block.page.replace('/', '_')}-{block.line}"
    workdir.mkdir()
    return run_snippet(block.source, block.where, cwd=workdir)


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("docs-snippets"))


def _check_ran(block: Block, outcome: Outcome) -> None:
    assert outcome.returncode == 0, f"{block.where}\n{outcome.stderr[-3000:]}"
    if block.kind != "before":
        alarms = [a for a in ALARMS if a in outcome.stderr]
        assert not alarms, f"{block.where}: {alarms} on stderr\n{outcome.stderr[-3000:]}"


def test_every_python_fence_is_seen_and_marked_well():
    pages = sorted(DOCS.rglob("*.md"))
    fences = sum(len(ANY_PYTHON_FENCE.findall(p.read_text())) for p in pages)
    assert fences == len(blocks()) > 0
    for pid, halves in _pairs().items():
        assert set(halves) == {"before", "after"}, f"pair {pid!r} has only {sorted(halves)}"


def test_migration_compares_every_peer_library():
    libraries = {m for pid in _compared() for m in _pairs()[pid]["before"].runs_with}
    assert {"prometheus_client", "apscheduler", "aiohttp", "talib"} <= libraries


@pytest.mark.parametrize("block", blocks(), ids=lambda b: b.where)
def test_docs_example(block: Block, tmp_root: str):
    compile(block.source, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if block.kind in ("fragment", "before"):
        return
    if block.kind == "pytest":
        workdir = Path(tmp_root) / f"pytest-{block.line}"
        workdir.mkdir()
        proc = run_pytest_module(block.source, workdir)
        assert proc.returncode == 0, f"{block.where}\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
        return
    _check_ran(block, _run(block, tmp_root))


@pytest.mark.parametrize("pair", _compared())
def test_before_prints_what_after_prints(pair: str, tmp_root: str):
    before, after = _pairs()[pair]["before"], _pairs()[pair]["after"]
    for module in before.runs_with:
        if module != "python" and importlib.util.find_spec(module) is None:
            pytest.skip(f"{before.where} needs {module}, not installed")
    expected = _run(after, tmp_root)
    _check_ran(after, expected)
    got = _run(before, tmp_root)
    _check_ran(before, got)
    assert got.stdout == expected.stdout, f"{before.where} against {after.where}"
