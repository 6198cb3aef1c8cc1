"""Builds the TA-Lib-style functions with their exact signatures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import SPECS


def _signature(spec: dict[str, Any], inputs_default: str | None) -> tuple[str, str, str]:
    ins = list(spec["inputs"])
    params = [f"{p['name']}={p['default']!r}" for p in spec["params"]]
    if inputs_default is None:
        sig = ", ".join(ins + params)
    else:
        sig = ", ".join([f"{i}={inputs_default}" for i in ins] + params)
    return (
        sig,
        ", ".join(ins) + ("," if len(ins) == 1 else ""),
        ", ".join(p["name"] for p in spec["params"]) + ("," if len(spec["params"]) == 1 else ""),
    )


def doc(spec: dict[str, Any]) -> str:
    lines = [
        f"{spec['name']}({', '.join(spec['inputs'])}[, ...])",
        "",
        f"{spec['title']} ({spec['group']})",
        "",
    ]
    lines.append("Inputs: " + ", ".join(spec["inputs"]))
    if spec["params"]:
        lines.append("Parameters:")
        for p in spec["params"]:
            rng = f"[{p['min']:g}, {p['max']:g}]"
            lines.append(f"    {p['name']}: {p['default']!r} {rng}")
    lines.append("Outputs: " + ", ".join(spec["outputs"]))
    return "\n".join(lines)


def make(
    kind: str, target: Callable[..., Any], fast: Callable[..., Any] | None = None
) -> dict[str, Callable[..., Any]]:
    """kind: "func" (arrays in, arrays out), "async" (awaitable twin) or
    "stream" (history optional). ``fast``, if given, is tried first with the
    same arguments; its None hands the call to ``target``."""
    out: dict[str, Callable[..., Any]] = {}
    for name, spec in SPECS.items():
        sig, ins, ps = _signature(spec, "None" if kind == "stream" else None)
        prefix = "async " if kind == "async" else ""
        await_ = "await " if kind == "async" else ""
        call = f"({name!r}, ({ins}), ({ps}))"
        if fast is None:
            body = f"    return {await_}_target{call}\n"
        else:
            body = (
                f"    r = _fast{call}\n    return r if r is not None else {await_}_target{call}\n"
            )
        src = f"{prefix}def {name}({sig}):\n{body}"
        ns: dict[str, Any] = {"_target": target, "_fast": fast}
        exec(src, ns)  # noqa: S102 - generated from the static function table
        fn = ns[name]
        fn.__doc__ = doc(spec)
        out[name] = fn
    return out
