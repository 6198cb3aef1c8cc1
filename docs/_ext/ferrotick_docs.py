"""A griffe extension for ferrotick's API reference (mkdocstrings loads it).

griffe reads the package statically: Python sources, and the ``.pyi`` stubs of
what is compiled (``ferrotick._core``) or generated at import (the indicator
functions of ``ferrotick.ta``, ``ta.aio`` and ``ta.stream``). The stubs carry
the signatures but not the documentation, which lives in the Rust doc comments
and in the indicator table. This extension fills them in from the installed
extension module, so the reference shows the text users see in ``help()``:

- an object of ``ferrotick._core`` without a docstring in the stub takes its
  runtime ``__doc__`` (classes, functions, methods, properties; never the
  docstring of a constant's type);
- an indicator function gets its title, inputs, outputs and parameter ranges
  from ``ferrotick.ta``'s table, as a Google-style docstring;
- reStructuredText left in Python docstrings (``:class:`X```, a paragraph
  ending in ``::``) is turned into Markdown;
- protocol methods (``__aenter__``, ``__await__``, ...) are left out of the
  listing: the prose says how an object is used with ``async with`` or
  ``await``.

Without an importable compiled core it logs a warning, which fails
``mkdocs build --strict``: the reference would be missing most of its text.
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from typing import Any

import griffe

logger = griffe.get_logger("ferrotick_docs")

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data):`~?([^`]+)`")
_LITERAL_MARK = re.compile(r"(\S)::$", re.M)
_LONE_LITERAL_MARK = re.compile(r"^\s*::\s*$", re.M)
# dataclasses document a class without a docstring by its signature: not text
_AUTO_DATACLASS_DOC = re.compile(r"^\w+\(.*\)$", re.S)
_TA_MODULES = {"ferrotick.ta": "func", "ferrotick.ta.aio": "async", "ferrotick.ta.stream": "stream"}
_RUNTIME_KINDS = (
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    types.ClassMethodDescriptorType,
    property,
    classmethod,
    staticmethod,
)


# the constructors, which the reference merges into their class
_KEPT_DUNDERS = {"__init__", "__new__"}


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def _docstring(text: str, obj: griffe.Object) -> griffe.Docstring:
    """A docstring for ``obj``, parsed as its module's docstrings are."""
    model = obj.module.docstring
    if model is None:
        return griffe.Docstring(text, parent=obj, parser=griffe.Parser.google)
    return griffe.Docstring(
        text, parent=obj, parser=model.parser, parser_options=model.parser_options
    )


def _markdown(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", text)
    text = _LONE_LITERAL_MARK.sub("", text)
    return _LITERAL_MARK.sub(r"\1:", text)


def _number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else f"{value:.0e}"


def _indicator_doc(spec: dict[str, Any], kind: str) -> str:
    inputs = ", ".join(f"`{name}`" for name in spec["inputs"])
    outputs = ", ".join(f"`{name}`" for name in spec["outputs"])
    several = len(spec["outputs"]) > 1
    lead = {
        "func": "Computed over whole arrays with the GIL released.",
        "async": "The awaitable twin of `ferrotick.ta."
        + spec["name"]
        + "`: runs on the compute pool while the event loop keeps serving.",
        "stream": "Opens a stream updated bar by bar in O(1): from history when the inputs "
        "are given (`InsufficientHistory` when too short), empty otherwise.",
    }[kind]
    lines = [f"{spec['title']} ({spec['group']}).", "", lead, ""]
    lines.append(f"Inputs: {inputs}. Outputs: {outputs}" + (", in this order." if several else "."))
    lines += ["", "Args:"]
    for name in spec["inputs"]:
        what = "prices or volumes: a numpy array of any real dtype, a pandas or polars Series"
        if kind == "stream":
            what += "; omit it to open an empty stream"
        lines.append(f"    {name}: {what}.")
    for p in spec["params"]:
        kind_of = "integer" if p["int"] else "number"
        lines.append(
            f"    {p['name']}: {kind_of} from {_number(p['min'])} to {_number(p['max'])}"
            f" (default {p['default']!r})."
        )
    return "\n".join(lines)


def _runtime_object(obj: griffe.Object) -> Any:
    module = importlib.import_module(obj.module.path)
    parts = obj.path[len(obj.module.path) + 1 :].split(".")
    value: Any = module
    for i, part in enumerate(parts):
        # the last step of a class member is read statically: a property's
        # descriptor, not the value it computes
        is_member = i == len(parts) - 1 and isinstance(value, type)
        value = inspect.getattr_static(value, part) if is_member else getattr(value, part)
    return value


_SPECS: dict[str, Any] | None = None


def _specs() -> dict[str, Any] | None:
    """The indicator table of the installed package, or None (with a warning)
    when its compiled core cannot be imported."""
    global _SPECS
    if _SPECS is None:
        try:
            _SPECS = importlib.import_module("ferrotick.ta._common").SPECS
        except ImportError as exc:
            logger.warning(
                "ferrotick's compiled core cannot be imported (%s): build and install the "
                "extension (maturin) before building the docs",
                exc,
            )
            _SPECS = {}
    return _SPECS or None


class FerrotickDocs(griffe.Extension):
    """Fills stub docstrings from the runtime and tidies docstrings for Markdown."""

    def on_module_members(self, *, mod: griffe.Module, **kwargs: Any) -> None:
        # The indicator stubs declare each array function as overloads only (arrays
        # in, arrays out; a Series in, the same kind out), and the stream functions
        # as plain stubs; the implementations are made at import. griffe keeps
        # overloads only beside an implementation it finds, so declare one here with
        # the first overload's signature, and give every indicator its docstring
        # while the stub module is at hand.
        kind = _TA_MODULES.get(mod.path)
        if kind is None or mod.filepath.suffix != ".pyi":
            return
        specs = _specs()
        if specs is None:
            return
        for name, overloads in list(mod.overloads.items()):
            if name in mod.members or not overloads:
                continue
            first = overloads[0]
            func = griffe.Function(
                name,
                lineno=first.lineno,
                endlineno=first.endlineno,
                parameters=first.parameters,
                returns=first.returns,
            )
            func.labels |= first.labels - {"overload"}
            func.overloads = overloads
            mod.set_member(name, func)
            del mod.overloads[name]
        for name, member in mod.members.items():
            if name in specs and not member.is_alias and member.is_function:
                member.docstring = _docstring(_indicator_doc(specs[name], kind), member)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != "ferrotick" or _specs() is None:
            return
        self._visit(pkg)

    def _visit(self, obj: griffe.Object) -> None:
        if obj.is_class:
            # aliases of a class wrap its members afresh, so leaving the protocol
            # methods out has to happen here, not through their visibility
            for name in [n for n in obj.members if n not in _KEPT_DUNDERS and _is_dunder(n)]:
                del obj.members[name]
        for member in obj.members.values():
            if member.is_alias:
                continue
            if obj.path == "ferrotick._core" or obj.path.startswith("ferrotick._core."):
                self._fill(member)
            if member.docstring is not None:
                member.docstring.value = _markdown(member.docstring.value)
            if member.is_module or member.is_class:
                self._visit(member)

    def _fill(self, obj: griffe.Object) -> None:
        if obj.docstring is not None:
            return
        try:
            runtime = _runtime_object(obj)
        except AttributeError:
            return
        text = runtime.__doc__ if isinstance(runtime, _RUNTIME_KINDS) else None
        if not isinstance(text, str) or _AUTO_DATACLASS_DOC.match(text.strip()):
            return
        obj.docstring = _docstring(inspect.cleandoc(text), obj)
