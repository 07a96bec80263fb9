"""Shards: disjoint subsets by id hash, concurrent writers into one dir, and real SLURM / submitit jobs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aigen.dataset import Shard
from aigen.sources import SourceItem
from aigen.status import main as status_main
from aigen.verify import main as verify_main
from conftest import ROOT, TINY, cli_command, file_bytes, manifest_rows, run_cli, shard_part

N_SAMPLES = 8
SERIAL = (*TINY, "batch_size=1")  # byte-identical across runs: the same batch shapes
SLURM_UP = ROOT / "tests" / "slurm" / "up.sh"


def items(count: int) -> list[SourceItem]:
    return [
        SourceItem(id=f"img{n:03d}", path=Path(f"/x/{n}.jpg"), source=f"{n}.jpg", category="") for n in range(count)
    ]


@pytest.mark.parametrize("count", [1, 3, 4, 7, 50])
@pytest.mark.parametrize("limit", [0, 5])
def test_shards_partition_the_ids(count, limit):
    everything = {item.id for item in shard_part(items(count), limit, Shard())}
    parts = [{item.id for item in shard_part(items(count), limit, Shard(i, 4))} for i in range(4)]
    assert set().union(*parts) == everything
    assert sum(len(part) for part in parts) == len(everything)  # no overlap
    reordered = list(reversed(items(count)))
    assert [{i.id for i in shard_part(reordered, limit, Shard(k, 4))} for k in range(4)] == parts


def test_bad_shard_index_is_a_one_line_error(tmp_path):
    result = run_cli(*TINY, "shard.count=2", "shard.index=2", f"dataset_dir={tmp_path / 'o'}")
    assert result.returncode == 2 and "shard.index=2" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("unsharded") / "out"
    result = run_cli(*SERIAL, f"dataset_dir={out}")
    assert result.returncode == 0, result.stderr
    return file_bytes(out)


def run_shards_at_once(out: Path, count: int, *extra: str) -> list[subprocess.CompletedProcess]:
    processes = [
        subprocess.Popen(
            cli_command(*SERIAL, f"shard.index={index}", f"shard.count={count}", f"dataset_dir={out}", *extra),
            cwd=out.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(count)
    ]
    return [(process, *process.communicate(timeout=300)) for process in processes]


def test_concurrent_shards_write_the_unsharded_dataset(tmp_path, unsharded, capsys):
    out = tmp_path / "out"
    for process, _, stderr in run_shards_at_once(out, 2):
        assert process.returncode == 0, stderr
    assert file_bytes(out) == unsharded
    assert sorted(p.name for p in out.glob("manifest*.jsonl")) == [
        "manifest.shard0000-of-0002.jsonl",
        "manifest.shard0001-of-0002.jsonl",
    ]
    assert len(manifest_rows(out)) == N_SAMPLES
    assert verify_main([str(out)]) == 0
    capsys.readouterr()
    assert status_main([str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{N_SAMPLES} pairs, 0 failed" in printed and "2 of 2 shards finished" in printed


def test_a_shard_with_no_images_is_not_an_error(tmp_path):
    # The sample of 2 is motorcycle_left and chelsea, whose ids hash to shards 3 and 0: shard 1 gets nothing.
    result = run_cli(*TINY, "limit=2", "shard.count=4", "shard.index=1", f"dataset_dir={tmp_path / 'o'}")
    assert result.returncode == 0, result.stderr
    assert "0 photos selected" in result.stdout


def test_killed_shard_is_rerun_and_completes(tmp_path, unsharded):
    out = tmp_path / "out"
    slow = ("generator.steps=20",)
    killed = subprocess.Popen(
        cli_command(*SERIAL, *slow, "shard.index=0", "shard.count=2", f"dataset_dir={out}"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    manifest = out / "manifest.shard0000-of-0002.jsonl"
    for _ in range(6000):
        if manifest.exists() and manifest.read_bytes().count(b"\n") >= 1:
            break
        killed.poll()
        assert killed.returncode is None, "shard 0 ended before it could be killed"
        subprocess.run(["sleep", "0.01"])
    killed.kill()
    killed.wait()
    assert run_cli(*SERIAL, *slow, "shard.index=1", "shard.count=2", f"dataset_dir={out}").returncode == 0
    assert verify_main([str(out), "--allow-incomplete"]) == 0
    rerun = run_cli(*SERIAL, *slow, "shard.index=0", "shard.count=2", f"dataset_dir={out}")
    assert rerun.returncode == 0, rerun.stderr
    assert verify_main([str(out)]) == 0
    slow_reference = run_cli(*SERIAL, *slow, f"dataset_dir={tmp_path / 'reference'}")
    assert slow_reference.returncode == 0
    assert file_bytes(out) == file_bytes(tmp_path / "reference")


def slurm_available() -> bool:
    probe = shutil.which("sinfo") and subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return bool(probe) and probe.returncode == 0 and "idle" in probe.stdout


@pytest.fixture(scope="module")
def slurm_cluster():
    """The local single-node cluster: .ci/run brings it up; here it is brought up when root and missing."""
    if not slurm_available() and os.geteuid() == 0:
        subprocess.run(["bash", str(SLURM_UP)], check=False, capture_output=True, timeout=600)
    if not slurm_available():
        if os.environ.get("AIGEN_REQUIRE_SLURM") == "1":
            pytest.fail("the local SLURM cluster is not up (tests/slurm/up.sh)")
        pytest.skip("no SLURM cluster (run tests/slurm/up.sh as root)")


LAUNCHERS = {
    "submitit_slurm": [
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.timeout_min=10",
    ],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
}


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_sharded_multirun_through_submitit(launcher, tmp_path, unsharded, request):
    if launcher == "submitit_slurm":
        request.getfixturevalue("slurm_cluster")
    out, sweep = tmp_path / "out", tmp_path / "sweep"  # a fresh submitit folder: job ids restart with the cluster
    result = run_cli(
        "-m",
        *LAUNCHERS[launcher],
        *SERIAL,
        "shard.count=2",
        "shard.index=range(0,2)",
        f"dataset_dir={out}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    job_logs = sorted(sweep.glob(".submitit/*/*_log.out"))
    assert len(job_logs) == 2, job_logs  # two real jobs, one per shard
    assert file_bytes(out) == unsharded
    assert verify_main([str(out)]) == 0
