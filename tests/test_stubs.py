"""The shipped stubs and the runtime name the same things, with the same signatures."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import ferrotick
from ferrotick import _core

PKG = Path(ferrotick.__file__).parent


def _stub_names(path: Path) -> dict[str, ast.AST]:
    tree = ast.parse(path.read_text())
    names: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "*":
                    # a star import re-exports the module's __all__
                    module = importlib.import_module(f"ferrotick.{node.module}")
                    names.update(dict.fromkeys(module.__all__, node))
                else:
                    names[alias.asname or alias.name] = node
    return names


def test_stub_files_ship_with_the_package():
    assert (PKG / "py.typed").exists()
    assert (PKG / "__init__.pyi").exists()
    assert (PKG / "_core.pyi").exists()


def test_package_stub_names_match_runtime():
    stub = _stub_names(PKG / "__init__.pyi")
    public = set(ferrotick.__all__)
    declared = set(stub) - {"__all__"}
    assert public == declared, (sorted(public - declared), sorted(declared - public))
    for name in public:
        assert hasattr(ferrotick, name), name


def test_core_stub_names_match_runtime():
    stub = _stub_names(PKG / "_core.pyi")
    runtime = {n for n in dir(_core) if not (n.startswith("__") and n.endswith("__"))}
    runtime.add("__version__")
    stub_set = set(stub) - {"_T"}
    # typing helpers imported by the stub are not runtime names
    stub_set -= {
        "Callable",
        "Generator",
        "Context",
        "ModuleType",
        "Any",
        "Generic",
        "TypeVar",
        "final",
        "asyncio",
    }
    if not hasattr(_core, "_bench"):
        stub_set.discard("_bench")
    assert stub_set == runtime, (sorted(stub_set - runtime), sorted(runtime - stub_set))


def _params(fn) -> list[tuple[str, object]]:
    sig = inspect.signature(fn)
    return [(p.name, p.kind) for p in sig.parameters.values()]


def test_function_signatures_match():
    stub = _stub_names(PKG / "_core.pyi")
    kinds = {
        "POSITIONAL_OR_KEYWORD": inspect.Parameter.POSITIONAL_OR_KEYWORD,
        "KEYWORD_ONLY": inspect.Parameter.KEYWORD_ONLY,
    }
    for name, node in stub.items():
        if not isinstance(node, ast.FunctionDef):
            continue
        fn = getattr(_core, name)
        try:
            runtime = inspect.signature(fn)
        except (TypeError, ValueError):
            continue
        args = node.args
        expected = [(a.arg, kinds["POSITIONAL_OR_KEYWORD"]) for a in args.args]
        expected += [(a.arg, kinds["KEYWORD_ONLY"]) for a in args.kwonlyargs]
        got = [(p.name, p.kind) for p in runtime.parameters.values()]
        got = [
            (
                n,
                inspect.Parameter.POSITIONAL_OR_KEYWORD
                if k == inspect.Parameter.POSITIONAL_ONLY
                else k,
            )
            for n, k in got
        ]
        assert got == expected, (name, got, expected)


def test_ta_stubs_are_the_ones_the_function_table_renders():
    from ferrotick.ta import _stubs

    for name, render in _stubs.RENDERERS.items():
        shipped = (PKG / "ta" / name).read_text()
        assert shipped == render(), f"ta/{name} is out of date: run python -m ferrotick.ta._stubs"


def test_ta_stubs_name_every_runtime_name():
    import ferrotick.ta as ta
    from ferrotick.ta import aio, stream

    for module, name in ((ta, "__init__.pyi"), (aio, "aio.pyi"), (stream, "stream.pyi")):
        stub = set(_stub_names(PKG / "ta" / name)) - {"__all__", "_S", "_Array", "_F64"}
        stub -= {"Sequence", "Any", "TypeVar", "overload", "np", "NDArray"}
        assert set(module.__all__) <= stub, (name, sorted(set(module.__all__) - stub))
        for fn in ta.FUNCTIONS:
            params = list(inspect.signature(getattr(module, fn)).parameters)
            node = _stub_names(PKG / "ta" / name)[fn]
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef), (name, fn)
            assert [a.arg for a in node.args.args] == params, (name, fn, params)
