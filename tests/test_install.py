"""pyproject.toml states ranges, so that aigen installs into an environment that has its own torch; constraints.txt
holds the exact versions, and `make install` installs exactly those."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib.metadata import PackageNotFoundError, distribution

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import ROOT

tomllib = pytest.importorskip("tomllib")
LOCK = ROOT / "constraints.txt"
NEEDS_PREVIOUS_MINOR = ("torch", "diffusers", "transformers")


def locked() -> dict[str, Version]:
    """constraints.txt as {canonical name: version}."""
    versions = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, text = line.partition("==")
            versions[canonicalize_name(name)] = Version(text)
    return versions


def declared() -> dict[str, Requirement]:
    """Every requirement of [project] dependencies and of each extra, by canonical name (aigen's own extras out)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [line for extra in project["optional-dependencies"].values() for line in extra]
    requirements = [Requirement(line) for line in lines]
    return {canonicalize_name(r.name): r for r in requirements if canonicalize_name(r.name) != "aigen"}


def test_locked_versions_satisfy_the_declared_ranges():
    versions = locked()
    for name, requirement in declared().items():
        assert name in versions, f"{name} is not in constraints.txt: install it, then run `make lock`"
        assert requirement.specifier.contains(versions[name], prereleases=True), (requirement, versions[name])


@pytest.mark.parametrize("name", NEEDS_PREVIOUS_MINOR)
def test_ranges_accept_the_previous_minor_release(name):
    """A cluster environment one minor release behind (its own CUDA build) keeps its version."""
    current = locked()[name]
    previous = Version(f"{current.major}.{current.minor - 1}.0")
    assert declared()[name].specifier.contains(previous), f"{name} {previous} is refused by {declared()[name]}"


def no_op_make_install(tmp_path, lock_is_newer: bool) -> str:
    """`make -n install` in a copy of the Makefile whose .venv was installed between pyproject.toml and the lock
    (or after both): what make would run."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    for name in ("pyproject.toml", "constraints.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "venv").mkdir(exist_ok=True)
    (tmp_path / "venv" / ".installed").write_text("")
    os.utime(tmp_path / "pyproject.toml", (1_000, 1_000))
    os.utime(tmp_path / "venv" / ".installed", (2_000, 2_000))
    os.utime(tmp_path / "constraints.txt", (3_000, 3_000) if lock_is_newer else (1_000, 1_000))
    result = subprocess.run(
        ["make", "-n", "install", "VENV=venv"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_install_uses_the_lock_and_reruns_when_it_changes(tmp_path):
    commands = no_op_make_install(tmp_path, lock_is_newer=True)
    assert "pip install" in commands and "-c constraints.txt" in commands and "'.[dev]'" in commands
    assert "pip install" not in no_op_make_install(tmp_path, lock_is_newer=False)


def installed_closure(name: str, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """The installed versions of `name`'s requirements (with `extras`), recursively, by canonical name."""
    found: dict[str, str] = {}
    pending = [(name, extras)]
    seen = set()
    while pending:
        package, package_extras = pending.pop()
        if (canonicalize_name(package), package_extras) in seen:
            continue
        seen.add((canonicalize_name(package), package_extras))
        try:
            dist = distribution(package)
        except PackageNotFoundError:
            continue  # a requirement whose marker excludes this platform
        found[canonicalize_name(package)] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            markers = [{"extra": extra} for extra in ("", *package_extras)]
            if requirement.marker is None or any(requirement.marker.evaluate(m) for m in markers):
                pending.append((requirement.name, tuple(sorted(requirement.extras))))
    return found


def test_make_install_installed_exactly_the_locked_set():
    """Every package aigen[dev] needs, transitively, is locked, at the version this environment has."""
    pytest.importorskip("aigen")
    versions = locked()
    installed = installed_closure("aigen", ("dev",))
    installed.pop("aigen")
    unlocked = sorted(set(installed) - set(versions))
    assert not unlocked, f"not in constraints.txt: {unlocked}; run `make lock`"
    public = {name: Version(Version(text).public) for name, text in installed.items()}  # 2.13.0+cpu is 2.13.0
    differ = {name: (str(v), str(versions[name])) for name, v in public.items() if v != versions[name]}
    assert not differ, f"installed vs locked: {differ}"
