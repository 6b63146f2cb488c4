"""Reproducible installs: every package, direct and transitive, is pinned with hashes in a lock generated
from requirements*.txt, and every install path uses the locks (CI also regenerates them: scripts/lock --check)."""

import re
from importlib.metadata import PackageNotFoundError, distribution

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support import REPO

LOCKS = {
    "requirements.lock": ["requirements.txt"],
    "requirements-mysql.lock": ["requirements-mysql.txt", "requirements.txt"],
    "requirements-dev.lock": ["requirements-dev.txt", "requirements.txt"],
}
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.MULTILINE)


def pins(lock: str) -> dict[str, Version]:
    text = (REPO / lock).read_text()
    found = {canonicalize_name(name): Version(version) for name, version, _ in PIN.findall(text)}
    requirement_lines = [line for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert len(found) == len(requirement_lines), f"{lock}: a requirement without an exact pin and hashes"
    return found


def direct_requirements(path: str) -> list[Requirement]:
    lines = (REPO / path).read_text().splitlines()
    return [
        Requirement(line.split("#")[0].strip())
        for line in lines
        if line.split("#")[0].strip() and not line.startswith("-")
    ]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_direct_requirement_is_pinned_within_its_range(lock):
    pinned = pins(lock)
    for source in LOCKS[lock]:
        for requirement in direct_requirements(source):
            name = canonicalize_name(requirement.name)
            assert name in pinned, f"{requirement} ({source}) is not in {lock}"
            assert requirement.specifier.contains(pinned[name], prereleases=True), f"{lock}: {name}=={pinned[name]}"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_transitive_dependency_is_pinned(lock):
    """What each pinned package needs (from its installed metadata) is pinned too."""
    pinned = pins(lock)
    for name in pinned:
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # not installed here (e.g. mysqlclient on a SQLite-only machine)
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            assert canonicalize_name(requirement.name) in pinned, f"{lock}: {name} needs {requirement}, not pinned"


def test_runtime_pins_are_the_same_in_every_lock():
    runtime = pins("requirements.lock")
    for lock in ("requirements-mysql.lock", "requirements-dev.lock"):
        other = pins(lock)
        assert {name: other[name] for name in runtime if name in other} == runtime


@pytest.mark.parametrize(
    ("path", "lock"),
    [
        ("Dockerfile", "requirements-mysql.lock"),
        ("scripts/run", "requirements.lock"),
        ("Makefile", "requirements-dev.lock"),
    ],
)
def test_installs_use_the_locks(path, lock):
    text = (REPO / path).read_text()
    assert lock in text
    assert not re.search(r"-r \S*requirements[\w-]*\.txt", text), f"{path} installs from a requirements*.txt"
