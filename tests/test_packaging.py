"""The set-up files agree with each other: pins, Binder, CI."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def _pins(path: Path) -> dict[str, list[str]]:
    pins: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if match:
            pins.setdefault(match.group(1).lower(), []).append(match.group(2))
    return pins


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!\[ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_every_dependency_is_pinned_in_the_lock_and_in_binder():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    dev = _requirement_names(project["optional-dependencies"]["dev"])
    lock, binder = _pins(ROOT / "requirements.lock"), _pins(ROOT / "binder" / "requirements.txt")
    assert runtime | dev <= set(lock), sorted((runtime | dev) - set(lock))
    assert runtime <= set(binder), sorted(runtime - set(binder))


def test_binder_pins_are_among_the_locked_versions():
    lock, binder = _pins(ROOT / "requirements.lock"), _pins(ROOT / "binder" / "requirements.txt")
    for name, (version, *_) in binder.items():
        assert version in lock.get(name, []), f"{name}=={version} is not in requirements.lock"


def test_binder_builds_the_project_and_ci_runs_make_test():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert post_build.startswith("#!/usr/bin/env bash")
    assert "set -e" in post_build and "pip install --no-cache-dir --no-deps -e ." in post_build
    assert (ROOT / "binder" / "runtime.txt").read_text().startswith("python-3.")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_folder_of_code_is_a_package_that_the_build_finds():
    from setuptools import find_packages

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    found = set(find_packages(ROOT, include=include["include"]))
    for top in ("mesh", "sim", "lessons"):
        for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
            if any(folder.glob("*.py")):
                assert (folder / "__init__.py").exists(), folder
                assert ".".join(folder.relative_to(ROOT).parts) in found, folder
