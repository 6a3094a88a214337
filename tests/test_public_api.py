"""The plug-in API: what a job type's module imports, named once in ``jobcore.__all__``."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import jobcore

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jobcore", "jobcore_api", "jobcore_worker", "jobcore_scheduler", "jobcore_devstack")


def test_every_public_name_is_importable_from_the_top():
    assert jobcore.__all__ == sorted(jobcore._SOURCES)
    for name in jobcore.__all__:
        assert getattr(jobcore, name) is getattr(
            importlib.import_module(jobcore._SOURCES[name]), name
        )


def test_importing_jobcore_alone_loads_neither_redis_nor_prometheus():
    code = "import sys, jobcore; print('redis' in sys.modules, 'prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.split() == ["False", "False"]


def test_the_readme_adds_a_job_type_with_the_public_api():
    section = (ROOT / "README.md").read_text().split("### Adding a job type", 1)[1]
    section = section.split("\n## ", 1)[0]
    imports = re.findall(r"^\s*from (\S+) import", section, re.M)
    assert imports and set(imports) == {"jobcore"}


def test_no_two_modules_share_a_name():
    names: dict[str, Path] = {}
    for package in ("libs", "services"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "__init__.py" or ".venv" in path.parts:
                continue
            assert path.name not in names, f"{path} and {names[path.name]}"
            names[path.name] = path


def test_only_the_store_and_the_broker_set_up_import_redis():
    allowed = {ROOT / "libs/jobcore/jobcore/broker.py"}
    store = ROOT / "libs/jobcore/jobcore/store"
    for path in (ROOT / "libs/jobcore/jobcore").rglob("*.py"):
        text = path.read_text()
        if re.search(r"^\s*(import redis|from redis)", text, re.M):
            assert path in allowed or store in path.parents, f"{path} imports redis"
