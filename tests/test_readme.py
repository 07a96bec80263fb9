"""The README's offline examples run exactly as written, after the quick start, in a fresh shell."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

IGNORED = ("data", "outputs", "multirun", ".venv")  # .gitignore'd folders the examples write into


def offline_block(readme: str) -> str:
    """The bash block of "Try every tool offline", exactly as printed."""
    section = readme.split("## Try every tool offline", 1)[1].split("\n## ", 1)[0]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def tracked_copy(target: Path) -> None:
    """The checkout as a fresh clone has it (tracked files only), sharing this checkout's .venv."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")


def untracked(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and path.relative_to(folder).parts[0] not in IGNORED
    }


def test_the_readme_states_a_two_command_quick_start_and_fits_a_page():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in quick.splitlines()] == ["make demo", "make test"]
    assert len(readme.splitlines()) <= 150
    for link in ("docs/datasets.md", "docs/generators.md", "docs/bias-and-controls.md", "docs/detector.md"):
        assert (ROOT / link).is_file() and f"]({link})" in readme


@pytest.mark.slow
def test_the_offline_examples_run_as_pasted_and_leave_nothing_untracked(tmp_path):
    clone = tmp_path / "clone"
    tracked_copy(clone)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # a fresh shell: no venv on the PATH until the block activates it
    make_demo = subprocess.run([".venv/bin/python", "run.py", "+experiment=demo"], cwd=clone, env=env,
                               capture_output=True, text=True, timeout=600)  # fmt: skip
    assert make_demo.returncode == 0, make_demo.stderr[-2000:]
    before = untracked(clone)
    block = offline_block((ROOT / "README.md").read_text())
    result = subprocess.run(["bash", "-e", "-c", block], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=1200, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "Traceback" not in result.stderr
    printed = (result.stdout + result.stderr).splitlines()
    assert len(printed) < 250, f"{len(printed)} lines: too long to read"
    assert untracked(clone) == before  # everything went to data/ or outputs/, which git ignores
    assert (clone / "outputs" / "report" / "index.html").is_file() and (
        clone / "outputs" / "detector" / "best.pt"
    ).is_file()
