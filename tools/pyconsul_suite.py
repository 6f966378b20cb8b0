"""Run py-consul's own test suite, unchanged, against the embedded registry.

    python -m tools.pyconsul_suite                       # the whole suite
    python -m tools.pyconsul_suite tests/api/test_acl.py # some of its files

py-consul's tests start a Consul agent in Docker for each test (with ACLs on for the ACL tests:
an initial management token, default policy ``allow``). Here the same fixtures start an embedded
:class:`mesh.registry.Registry` instead; the test files themselves are py-consul's, from the sdist
of the py-consul version installed (fetched from PyPI once, kept under ``.cache/``). Its asyncio
tests need pytest-asyncio, which is installed beside them there (not into the project's
environment, where it would meet the suite's own async plugin).

Prints each test's outcome and the totals; exits 0 when the run completed (whatever the outcomes),
2 when the suite could not be fetched. ``--json FILE`` writes the outcomes for a test to read.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "pyconsul-suite"
PLUGINS = ("pytest-asyncio>=0.23",)

#: Replaces py-consul's root conftest.py (which starts Docker containers): the same fixtures, each
#: a fresh embedded registry, as each of theirs is a fresh agent.
CONFTEST = '''\
"""py-consul's fixtures, served by the workbench's embedded registry (tools/pyconsul_suite.py)."""

import collections
import os
import uuid

import pytest

from mesh.registry import CONSUL_VERSION, ACLConfig, Registry

ConsulInstance = collections.namedtuple("ConsulInstance", ["container", "port", "version"])


@pytest.fixture(scope="session", autouse=True)
def _unset_consul_token():
    os.environ.pop("CONSUL_HTTP_TOKEN", None)


@pytest.fixture
def consul_instance():
    with Registry(dns_port=None) as registry:
        yield ConsulInstance(None, registry.http_port, CONSUL_VERSION)


@pytest.fixture
def acl_consul_instance():
    token = uuid.uuid4().hex  # as py-consul's fixture makes it
    with Registry(dns_port=None, acl=ACLConfig("allow", token)) as registry:  # Consul's default policy
        yield ConsulInstance(None, registry.http_port, CONSUL_VERSION), token


@pytest.fixture
def consul_port(consul_instance):
    return consul_instance.port, consul_instance.version
'''

PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


def fetch(version: str) -> Path:
    """Return the directory of py-consul ``version``'s sdist (its tests), fetched once."""
    suite = CACHE / f"py_consul-{version}"
    if (suite / "tests").is_dir():
        return suite
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    "--dest", str(CACHE), f"py-consul=={version}"], check=True, timeout=300)
    with tarfile.open(CACHE / f"py_consul-{version}.tar.gz") as archive:
        # the "data" filter refuses links and paths out of the folder (Python 3.10.12 and later)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(CACHE, **safe)
    return suite


def plugins() -> Path:
    """Return the directory pytest-asyncio is installed in, beside the suite."""
    target = CACHE / "plugins"
    if not (target / "pytest_asyncio").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *PLUGINS],
                       check=True, timeout=300)
    return target


def run(paths: list[str], report: Path) -> dict[str, str]:
    """Run py-consul's tests at ``paths`` (all: ``tests``); return each test's outcome by id."""
    suite = fetch(importlib.metadata.version("py-consul"))
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "pytest.ini").write_text(PYTEST_INI)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugins()), str(ROOT)]))
    environment.pop("CONSUL_HTTP_ADDR", None)
    xml = report.with_suffix(".xml")
    # py-consul's own modules are the installed client's (``consul``), not the sdist's copy: the
    # client under test is the one the workbench uses.
    subprocess.run([sys.executable, "-m", "pytest", "-c", "pytest.ini", "-p", "no:cacheprovider", "-q",
                    "-o", "addopts=", f"--junitxml={xml}", *(paths or ["tests"])],
                   cwd=suite, env=environment, timeout=1800)
    outcomes = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            if case.find(kind) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
        outcomes[name] = outcome
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="py-consul's test files or ids (default: all of tests/)")
    parser.add_argument("--json", type=Path, help="write {test id: outcome} here")
    args = parser.parse_args(argv)
    report = args.json or CACHE / "outcomes.json"
    try:
        outcomes = run(args.paths, report)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"could not fetch py-consul's suite: {exc}", file=sys.stderr)
        return 2
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps(outcomes, indent=1))
    totals: dict[str, int] = {}
    for name, outcome in sorted(outcomes.items()):
        totals[outcome] = totals.get(outcome, 0) + 1
        if outcome != "passed":
            print(f"{outcome:8} {name}")
    print(", ".join(f"{count} {outcome}" for outcome, count in sorted(totals.items())), f"of {len(outcomes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
