"""Every name the seeds import comes from `ferrotick`, and `import ferrotick` stays lazy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_python

import ferrotick

NAMES = [
    line.strip()
    for line in (Path(__file__).parent / "seed_names.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


@pytest.mark.parametrize("name", NAMES)
def test_seed_name_importable_and_public(name):
    ns: dict[str, object] = {}
    exec(f"from ferrotick import {name}", ns)
    assert ns[name] is getattr(ferrotick, name)
    assert name in ferrotick.__all__
    assert name in dir(ferrotick)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        ferrotick.NoSuchThing  # noqa: B018
    with pytest.raises(ImportError):
        exec("from ferrotick import NoSuchThing", {})


def test_import_does_not_load_the_lazy_modules():
    out = run_python(
        """
        import json, sys
        import ferrotick
        mods = ["ferrotick.monitor", "ferrotick.scheduler", "ferrotick.tasks",
                "ferrotick.container", "ferrotick.scheduler._factory"]
        before = [m for m in mods if m in sys.modules]
        ferrotick.TaskManager, ferrotick.AsyncScheduler
        print(json.dumps([before, [m for m in mods if m in sys.modules]]))
        """
    )
    assert out.returncode == 0, out.stderr
    before, after = json.loads(out.stdout)
    assert before == []
    assert "ferrotick.tasks" in after and "ferrotick.scheduler" in after
