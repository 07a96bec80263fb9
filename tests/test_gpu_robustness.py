"""GPU runs that survive, tested on CPU: out-of-memory halves the batch, systematic errors stop the run, torchrun
processes take one shard each, and sharded W&B runs log one complete dataset artifact."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest
import torch
from PIL import Image

from aigen.dataset import Shard
from aigen.dataset.writer import PairWriter
from aigen.devices import cuda_index
from aigen.errors import UserError
from aigen.factory import make_dataset
from aigen.generators.controls import Identity
from aigen.settings import check_settings
from aigen.verify import main as verify_main
from conftest import ROOT, compose_config, file_bytes, manifest_rows, run_cli

N_SAMPLES = 8


class OutOfMemoryAbove(Identity):
    """The identity control on a pretend GPU that runs out of memory above `fits` images per call. Each failed
    call leaves a tensor behind in its frame: the next call checks that it was freed before the retry."""

    def __init__(self, fits: int, gen_size: int = 64) -> None:
        super().__init__(gen_size, name="oom_above")
        self.fits = fits
        self.calls: list[int] = []
        self.leaked = 0
        self._failed_batch: weakref.ref | None = None

    def generate(self, inputs, seeds):
        if self._failed_batch is not None and self._failed_batch() is not None:
            self.leaked += 1  # the failed call's tensors are still alive: the retry ran inside `except`
        self.calls.append(len(inputs))
        if len(inputs) > self.fits:
            batch = torch.empty(len(inputs), 3, 8, 8)
            self._failed_batch = weakref.ref(batch)
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {batch.numel()} floats")
        return super().generate(inputs, seeds)


class AlwaysFails(Identity):
    """A generator with a systematic error: every call raises the same way."""

    def __init__(self, gen_size: int = 64) -> None:
        super().__init__(gen_size, name="always_fails")
        self.calls = 0

    def generate(self, inputs, seeds):
        self.calls += 1
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class FailsAfterFirstCall(Identity):
    """Makes its first batch, then fails systematically; `failing` is set just before the first failure."""

    def __init__(self, failing: threading.Event, gen_size: int = 64) -> None:
        super().__init__(gen_size, name="fails_after_first_call")
        self.failing = failing
        self.calls = 0

    def generate(self, inputs, seeds):
        self.calls += 1
        if self.calls == 1:
            return super().generate(inputs, seeds)
        self.failing.set()
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def run_with(generator: Identity, tmp_path: Path, *overrides: str):
    """make_dataset with this very generator object (so a test can read what it saw)."""
    cfg = compose_config("source=samples", "generator=identity", "generator.gen_size=64", "size=64", "logger=none",
                         f"dataset_dir={tmp_path / 'out'}", *overrides)  # fmt: skip
    return make_dataset(cfg, generator=generator)


def test_out_of_memory_halves_the_batch_once_and_frees_the_failed_batch_first(tmp_path):
    generator = OutOfMemoryAbove(fits=2)
    summary = run_with(generator, tmp_path, "batch_size=4")
    assert (summary.generated, summary.failed) == (N_SAMPLES, 0)
    assert generator.calls == [4, 2, 2, 2, 2]  # 4 is tried once; every later batch goes in halves
    assert generator.leaked == 0
    record = json.loads((summary.dataset_dir / "dataset.json").read_text())
    assert record["runs"][-1]["batch_size"] == {"start": 4, "end": 2, "out_of_memory_at": [4]}


def test_an_image_that_does_not_fit_alone_is_recorded_and_the_run_goes_on(tmp_path):
    generator = OutOfMemoryAbove(fits=0)
    with pytest.raises(UserError, match="none of the 8 photos could be used"):
        run_with(generator, tmp_path, "batch_size=2", "max_consecutive_failures=0")
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert len(failures) == N_SAMPLES and all("OutOfMemoryError" in row["reason"] for row in failures)
    assert generator.calls[:2] == [2, 1] and set(generator.calls[2:]) == {1}


def test_a_systematic_error_stops_the_run_after_n_calls(tmp_path):
    generator = AlwaysFails()
    with pytest.raises(UserError) as raised:
        run_with(generator, tmp_path, "batch_size=4", "max_consecutive_failures=5")
    message = str(raised.value)
    assert "\n" not in message and "failed 5 times in a row with RuntimeError: CUDA error" in message
    assert generator.calls == 5  # the batch, then four single images: not one failure per photo


class FailsAndCounts(AlwaysFails):
    """A paid API's way to fail: its own counts (requests that timed out and may have been billed) matter most then."""

    def stats(self) -> dict:
        return {"possibly_billed_timeouts": self.calls}


def test_the_generator_counts_are_said_when_the_run_fails(tmp_path, capsys):
    with pytest.raises(UserError):
        run_with(FailsAndCounts(), tmp_path, "batch_size=4", "max_consecutive_failures=2")
    assert "possibly billed timeouts: 2" in capsys.readouterr().out


def test_a_failed_run_records_the_pairs_its_writer_still_had_to_write(tmp_path, monkeypatch):
    """The first batch's pairs are still queued when the run fails (the writer waits for the failure here): the
    failed run's record is written once the writer has closed, so its counts are the pairs on disk."""
    failing = threading.Event()
    write_now = PairWriter._write_pair_now

    def write_after_the_failure(self, *args):
        assert failing.wait(timeout=60)
        write_now(self, *args)

    monkeypatch.setattr(PairWriter, "_write_pair_now", write_after_the_failure)
    with pytest.raises(UserError, match="failed 1 times in a row"):
        run_with(FailsAfterFirstCall(failing), tmp_path, "batch_size=4", "max_consecutive_failures=1")
    record = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert record["runs"][-1]["state"] == "failed"
    assert record["counts"]["pairs"] == len(manifest_rows(tmp_path / "out")) == 4


def test_bad_photos_never_trip_the_breaker(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(12):
        (photos / f"broken{index:02d}.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (80, 64), (10, 20, 30)).save(photos / "good.png")
    cfg = compose_config("source=folder", f"source.root={photos}", "generator=identity", "generator.gen_size=64",
                         "size=64", "logger=none", "max_failure_ratio=1", "max_consecutive_failures=2",
                         f"dataset_dir={tmp_path / 'out'}")  # fmt: skip
    summary = make_dataset(cfg)
    assert (summary.generated, summary.failed) == (1, 12)


def test_bad_breaker_setting_is_a_user_error(tiny_cfg):
    with pytest.raises(UserError, match="max_consecutive_failures=-1"):
        make_dataset(tiny_cfg("max_consecutive_failures=-1"))


@pytest.mark.parametrize(
    ("environ", "shard", "devices", "expected"),
    [
        ({}, Shard(0, 1), 8, 0),
        ({"LOCAL_RANK": "3"}, Shard(3, 4), 8, 3),  # torchrun / accelerate
        ({"SUBMITIT_EXECUTOR": "local"}, Shard(5, 8), 8, 5),  # submitit_local jobs see every GPU
        ({"SUBMITIT_EXECUTOR": "local"}, Shard(9, 12), 8, 1),
        ({"SUBMITIT_EXECUTOR": "slurm"}, Shard(5, 8), 1, 0),  # SLURM gives each task its own GPU
    ],
)
def test_each_process_takes_its_own_gpu(environ, shard, devices, expected):
    assert cuda_index(environ, shard, devices) == expected


def test_torchrun_ranks_are_shards(monkeypatch, tiny_cfg):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert check_settings(tiny_cfg()) == Shard(2, 4)
    with pytest.raises(UserError, match="torchrun"):
        check_settings(tiny_cfg("shard.count=2"))
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(UserError, match="RANK=4 is not in"):
        check_settings(tiny_cfg())


def test_torchrun_two_processes_make_the_unsharded_dataset(tmp_path):
    serial = ("source=samples", "generator=sd_tiny", "size=64", "logger=none", "batch_size=1")
    # torchrun runs each process with OMP_NUM_THREADS=1; floating point is byte-identical at equal thread counts.
    reference = run_cli(*serial, f"dataset_dir={tmp_path / 'reference'}", env={"OMP_NUM_THREADS": "1"})
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "out"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(ROOT / "run.py")]
    result = subprocess.run([*torchrun, *serial, f"dataset_dir={out}"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert file_bytes(out) == file_bytes(tmp_path / "reference")
    files = sorted(path.name for path in out.glob("manifest*.jsonl"))
    assert files == ["manifest.shard0000-of-0002.jsonl", "manifest.shard0001-of-0002.jsonl"]
    for path in out.glob("manifest*.jsonl"):
        ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
        assert ids and len(ids) == len(set(ids))
        index = int(path.name.split("shard")[1][:4])
        assert all(Shard(index, 2).owns(image_id) for image_id in ids)
    assert len(manifest_rows(out)) == N_SAMPLES and verify_main([str(out)]) == 0


def artifact_files_by_run(root: Path) -> list[set[str]]:
    """For each offline W&B run under `root`, the pair files its dataset artifact lists (read from the run's
    record, where offline mode keeps the artifact manifest)."""
    entry = re.compile(rb"(?:original|ai)/[A-Za-z0-9_.-]+\.jpg")
    return [
        {match.decode() for match in entry.findall(record.read_bytes())}
        for record in sorted(root.rglob("offline-run-*/run-*.wandb"))
    ]


def test_sharded_wandb_runs_log_one_complete_artifact(tmp_path):
    """Shard 0 stops at a gate after its first pair while shard 1 runs to its end: shard 1 must not log a partial
    artifact (nor crash on shard 0's temporary files); shard 0, finishing last, logs every pair."""
    folders = {name: tmp_path / name.lower() for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR")}
    for folder in folders.values():
        folder.mkdir()
    env = {name: str(folder) for name, folder in folders.items()}
    env |= {"WANDB_MODE": "offline", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "tests")}
    out, gate = tmp_path / "out", tmp_path / "gate"
    args = ["source=samples", "generator=identity", "generator.gen_size=64", "size=64", "logger=wandb",
            "shard.count=2", "batch_size=1", f"dataset_dir={out}"]  # fmt: skip
    gated = ["generator._target_=gates.GatedIdentity", f"+generator.gate={gate}"]
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *args, *gated, "shard.index=0"],
        cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        manifest = out / "manifest.shard0000-of-0002.jsonl"
        deadline = time.monotonic() + 300
        while not (manifest.exists() and manifest.read_bytes().count(b"\n")) and first.poll() is None:
            assert time.monotonic() < deadline, "shard 0 wrote no pair"
            time.sleep(0.05)
        other = run_cli(*args, "shard.index=1", cwd=tmp_path, env=env)
        assert other.returncode == 0, other.stderr
        assert "dataset artifact: waiting for shard(s) [0]" in other.stdout
    finally:
        gate.touch()
        stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert "dataset artifact: logged" in stdout
    logged = [files for files in artifact_files_by_run(tmp_path / "outputs") if files]
    assert len(logged) == 1 and sorted(logged[0]) == sorted(file_bytes(out))
    assert len(artifact_files_by_run(tmp_path / "outputs")) == 2
