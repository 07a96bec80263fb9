"""Records that stay exact at the edges: a pair replaced under a kill, a sharded rerun of a new selection, and a
full disk while a shard closes."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from aigen.dataset import Shard, pair_paths, read_record, read_rows
from aigen.dataset import writer as writer_module
from aigen.dataset.record import shards_not_finished
from aigen.dataset.writer import PairWriter
from aigen.errors import UserError
from aigen.factory import make_dataset
from conftest import compose_config


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def write(dataset_dir: Path, image_id: str, version: str) -> None:
    """Write pair `image_id` with bytes and source hash tagged `version`."""
    with PairWriter(dataset_dir, Shard()) as writer:
        row = {"id": image_id, "source_sha256": version}
        writer.write_pair(row, f"original {version}".encode(), lambda: f"ai {version}".encode())


def on_disk(dataset_dir: Path, image_id: str) -> tuple[str | None, ...]:
    """(the row's version, the original's, the AI image's) as a reader would find them now."""
    row = read_rows(dataset_dir).get(image_id)
    files = [
        path.read_bytes().decode().split()[1] if path.exists() else None for path in pair_paths(dataset_dir, image_id)
    ]
    return (row and row["source_sha256"], *files)


@pytest.mark.parametrize("kill_at_write", [1, 2])
def test_a_kill_while_a_pair_is_replaced_never_mixes_old_and_new(tmp_path, monkeypatch, kill_at_write):
    write(tmp_path, "p", "old")
    real_write_atomic, calls, seen = writer_module.write_atomic, [], []

    def killed_at_one_write(path, data, tag=""):
        calls.append(path)
        if len(calls) == kill_at_write:
            seen.append(on_disk(tmp_path, "p"))  # what the disk holds when SIGKILL strikes here
            raise Killed
        real_write_atomic(path, data, tag)

    monkeypatch.setattr(writer_module, "write_atomic", killed_at_one_write)
    with pytest.raises(Killed):
        write(tmp_path, "p", "new")
    monkeypatch.undo()
    [(row, original, ai)] = seen
    assert (original, ai) != ("new", "old")
    assert ai is None  # the old AI image goes first: the old row has no whole pair left
    # The next open of the shard removes the half-replaced pair and its row; a rerun makes it again.
    with PairWriter(tmp_path, Shard()):
        pass
    assert on_disk(tmp_path, "p") == (None, None, None)
    assert not list((tmp_path / "original").glob(".*"))


def test_a_replaced_pair_written_whole_is_the_new_pair(tmp_path):
    write(tmp_path, "p", "old")
    write(tmp_path, "p", "new")
    assert on_disk(tmp_path, "p") == ("new", "new", "new")
    assert not list((tmp_path / "original").glob(".*"))


def test_shards_finished_in_an_earlier_round_are_not_done_for_a_new_selection():
    runs = [
        {"shard": [0, 2], "state": "finished", "selection": "first"},
        {"shard": [1, 2], "state": "finished", "selection": "first"},
        {"shard": [0, 2], "state": "finished", "selection": "second"},
    ]
    record = {"shard_count": 2, "runs": runs}
    assert shards_not_finished(record, "second") == [1]
    assert shards_not_finished(record) == [1]  # status judges the newest round
    assert shards_not_finished(record, "first") == [0]
    assert shards_not_finished({"shard_count": 2, "runs": runs[:2]}) == []


def test_a_sharded_rerun_with_more_photos_waits_for_every_shard_again(tmp_path):
    def run(index, limit):
        shard = (f"shard.index={index}", "shard.count=2")
        cfg = compose_config("source=samples", "generator=identity", "generator.gen_size=64", "size=64", "logger=none",
                             f"limit={limit}", *shard, f"dataset_dir={tmp_path}")  # fmt: skip
        make_dataset(cfg)
        return read_record(tmp_path)

    run(0, 4)
    assert shards_not_finished(run(1, 4)) == []
    record = run(0, 8)  # a new round: shard 1 finished only the smaller selection
    assert shards_not_finished(record) == [1]
    assert record["runs"][-1]["selection"] != record["runs"][0]["selection"]


def test_a_full_disk_while_a_shard_closes_is_one_line(tmp_path, monkeypatch):
    real_compact = writer_module.compact
    calls = []

    def compact_on_a_full_disk(path, keep):
        calls.append(path)
        if calls.count(path) > 1:  # a file's second compaction is the closing one
            raise OSError(errno.ENOSPC, "No space left on device")
        real_compact(path, keep)

    monkeypatch.setattr(writer_module, "compact", compact_on_a_full_disk)
    cfg = compose_config("source=samples", "generator=identity", "generator.gen_size=64", "size=64", "logger=none",
                         "limit=2", f"dataset_dir={tmp_path / 'out'}")  # fmt: skip
    with pytest.raises(UserError, match="disk full while writing .*rerun to resume"):
        make_dataset(cfg)
    assert [path.name for path in calls] == ["manifest.jsonl", "manifest.jsonl"]  # no failure rows to compact
    record = json.loads((tmp_path / "out" / "dataset.json").read_text())
    last = record["runs"][-1]  # the close failed after the loop: the run is recorded as failed, saying why
    assert last["state"] == "failed" and "No space left on device" in last["error"]
