"""A small reader of the Prometheus text format (for ``get_sample_value``)."""

from __future__ import annotations

import math


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    n = len(text)
    while i < n:
        while i < n and text[i] in " ,":
            i += 1
        if i >= n:
            break
        eq = text.index("=", i)
        key = text[i:eq].strip()
        i = eq + 1
        if text[i] != '"':
            raise ValueError(f"bad label value at {i}")
        i += 1
        out = []
        while text[i] != '"':
            if text[i] == "\\":
                nxt = text[i + 1]
                out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, nxt))
                i += 2
            else:
                out.append(text[i])
                i += 1
        labels[key] = "".join(out)
        i += 1
    return labels


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """[(sample name, labels, value)] of every sample line."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            label_text, value_text = rest.rsplit("}", 1)
            labels = _parse_labels(label_text)
        else:
            name, value_text = line.split(" ", 1)
            labels = {}
        value = value_text.strip().split(" ")[0]
        v = {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(value)
        samples.append((name.strip(), labels, float(value) if v is None else v))
    return samples


def sample_value(text: str, name: str, labels: dict[str, str]) -> float | None:
    for n, lb, v in parse_samples(text):
        if n == name and lb == labels:
            return v
    return None
