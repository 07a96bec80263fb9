"""Killed, interrupted, concurrent and out-of-space runs leave a consistent dataset that a rerun completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from omegaconf import open_dict
from PIL import Image

from aigen.dataset import Shard, read_rows
from aigen.dataset.writer import PairWriter
from aigen.factory import make_dataset
from aigen.files import compact
from aigen.generators.sd import SDImageVariation
from aigen.seeding import per_image_seed
from aigen.status import main as status_main
from aigen.verify import main as verify_main
from aigen.verify import verify
from conftest import ROOT, TINY, cli_command, file_bytes, manifest_rows, run_cli

N_SAMPLES = 8
SLOW = (*TINY, "batch_size=1", "generator.steps=20")  # slow enough to be killed between pairs


def start_run(out, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli_command(*SLOW, f"dataset_dir={out}", *extra),
        cwd=out.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_pairs(out, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    manifest = out / "manifest.jsonl"
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and manifest.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.005)
    raise AssertionError(f"run ended or timed out before {count} pairs: {process.communicate()}")


def assert_no_partial_images(out) -> None:
    for path in out.glob("*/*.jpg"):
        with Image.open(path) as image:
            image.load()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run with the same settings: what every resumed run must end up as."""
    out = tmp_path_factory.mktemp("reference") / "out"
    result = run_cli(*SLOW, f"dataset_dir={out}")
    assert result.returncode == 0, result.stderr
    return file_bytes(out)


@pytest.mark.parametrize("kill_after", [1, 3, 6])
def test_sigkill_at_any_point_then_rerun_completes_identically(tmp_path, reference, kill_after, capsys):
    out = tmp_path / "out"
    process = start_run(out)
    wait_for_pairs(out, kill_after, process)
    process.kill()
    process.wait()
    assert status_main([str(out)]) == 0
    assert "shard 0 of 1: killed (started" in capsys.readouterr().out

    report = verify(out)
    assert report.corrupt == [], report.corrupt
    assert_no_partial_images(out)
    assert verify_main([str(out), "--allow-incomplete"]) == 0

    result = run_cli(*SLOW, f"dataset_dir={out}")
    assert result.returncode == 0, result.stderr
    assert file_bytes(out) == reference
    assert len(manifest_rows(out)) >= N_SAMPLES and verify_main([str(out)]) == 0


def test_torn_manifest_line_is_repaired(tiny_cfg, tmp_path):
    out = make_dataset(tiny_cfg("limit=3")).dataset_dir
    with open(out / "manifest.jsonl", "a") as handle:
        handle.write('{"id": "half a li')
    summary = make_dataset(tiny_cfg())
    assert (summary.already_done, summary.generated) == (3, N_SAMPLES - 3)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == N_SAMPLES and all(json.loads(line) for line in lines)


def test_sigint_stops_after_the_batch_with_a_summary(tmp_path):
    out = tmp_path / "out"
    process = start_run(out)
    wait_for_pairs(out, 2, process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT
    assert "Traceback" not in stderr
    lines = stdout.splitlines()
    interrupted = next(i for i, line in enumerate(lines) if line.startswith("interrupted by SIGINT"))
    totals = next(i for i, line in enumerate(lines) if line.startswith("so far: "))
    assert interrupted < totals and not any(line.startswith("done: ") for line in lines)
    record = json.loads((out / "dataset.json").read_text())
    assert record["runs"][-1]["interrupted"] is True
    assert verify_main([str(out)]) == 0
    result = run_cli(*SLOW, f"dataset_dir={out}")
    assert result.returncode == 0 and len({r["id"] for r in manifest_rows(out)}) == N_SAMPLES


def test_second_concurrent_run_refuses(tiny_cfg, tmp_path):
    out = tmp_path / "out"
    make_dataset(tiny_cfg("limit=1", dataset_dir=out))
    with PairWriter(out, Shard()):
        result = run_cli(*TINY, f"dataset_dir={out}")
    assert result.returncode != 0
    assert "being written by another run" in result.stderr and f"pid {os.getpid()}" in result.stderr


def test_stale_lock_of_a_killed_run_does_not_block(tiny_cfg, tmp_path):
    out = tmp_path / "out"
    make_dataset(tiny_cfg("limit=1", dataset_dir=out))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from aigen.dataset.writer import PairWriter; "
            "from aigen.dataset import Shard; "
            "w = PairWriter(Path(sys.argv[1]), Shard()); "
            "w.__enter__(); print('locked', flush=True); time.sleep(600)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()
    holder.wait()
    assert (out / ".lock").read_text().startswith("pid ")  # the file stays; the lock does not
    assert make_dataset(tiny_cfg(dataset_dir=out)).generated == N_SAMPLES - 1


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount_point)], check=False)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_disk_full_stops_cleanly_and_resumes(small_disk):
    out = small_disk / "out"
    result = run_cli(*TINY, "batch_size=1", f"dataset_dir={out}")
    assert result.returncode != 0, result.stdout
    assert "disk full" in result.stderr and "Traceback" not in result.stderr
    assert verify(out).corrupt == []
    assert 0 < len(manifest_rows(out)) < N_SAMPLES
    subprocess.run(["mount", "-o", "remount,size=10m", str(small_disk)], check=True)
    resumed = run_cli(*TINY, "batch_size=1", f"dataset_dir={out}")
    assert resumed.returncode == 0, resumed.stderr
    assert verify_main([str(out)]) == 0 and len(manifest_rows(out)) == N_SAMPLES


def test_verify_catches_missing_truncated_and_phantom_files(tiny_cfg, capsys):
    out = make_dataset(tiny_cfg()).dataset_dir
    assert verify_main([str(out)]) == 0
    (out / "ai" / "coffee.jpg").unlink()
    data = (out / "original" / "camera.jpg").read_bytes()
    (out / "original" / "camera.jpg").write_bytes(data[: len(data) // 2])
    with open(out / "manifest.jsonl", "a") as handle:
        row = {"id": "ghost", "original": "original/ghost.jpg", "ai": "ai/ghost.jpg", "size": 64}
        handle.write(json.dumps(row) + "\n")
    capsys.readouterr()
    assert verify_main([str(out)]) == 1
    printed = capsys.readouterr().out
    assert "CORRUPT ai/coffee.jpg (pair coffee): missing" in printed
    assert "CORRUPT original/camera.jpg (pair camera): does not decode" in printed
    assert "CORRUPT original/ghost.jpg (pair ghost): missing" in printed
    assert "PROBLEMS FOUND" in printed


class OutOfMemoryOnBatches(SDImageVariation):
    """The tiny pipeline, failing like a GPU out of memory on any batch above one image, and always on `coffee`."""

    def generate(self, inputs, seeds):
        if len(inputs) > 1:
            raise RuntimeError("CUDA out of memory (batch too large)")
        if seeds == [per_image_seed(0, "coffee")]:
            raise RuntimeError("CUDA out of memory (this image)")
        return super().generate(inputs, seeds)


def test_a_failing_batch_is_retried_image_by_image_then_recorded(tiny_cfg):
    cfg = tiny_cfg("batch_size=4")
    with open_dict(cfg):
        cfg.generator._target_ = f"{__name__}.OutOfMemoryOnBatches"
    summary = make_dataset(cfg)
    assert (summary.generated, summary.failed) == (N_SAMPLES - 1, 1)
    failure = read_rows(summary.dataset_dir, "failures")["coffee"]
    assert failure["stage"] == "generate" and "CUDA out of memory (this image)" in failure["reason"]


def test_compaction_keeps_the_last_row_per_id_and_rewrites_only_a_file_that_changes(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [json.dumps({"id": key, "n": n}, sort_keys=True) + "\n" for key, n in (("a", 1), ("b", 1), ("a", 2))]
    path.write_text("".join(lines))
    compact(path, lambda row: True)
    assert path.read_text() == lines[1] + lines[2]  # a's last row, in the order ids were last written
    inode = path.stat().st_ino
    compact(path, lambda row: True)
    assert path.stat().st_ino == inode  # already compact: not written again
    path.write_text(path.read_text() + '{"id": "c", "n"')  # a torn last line
    compact(path, lambda row: True)
    assert path.read_text() == lines[1] + lines[2]
    compact(path, lambda row: row["id"] != "b")
    assert path.read_text() == lines[2]
