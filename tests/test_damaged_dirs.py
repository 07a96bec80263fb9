"""Dataset dirs changed or damaged outside aigen, and output folders a tool cannot take: every tool that reads a
dataset dir says so in one line (aigen.verify as CORRUPT), never with a traceback or a count that is not true."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import open_dict

from aigen.audit import main as audit_main
from aigen.dataset import open_dataset
from aigen.dataset.record import shards_not_finished, unfinished_note
from aigen.errors import UserError
from aigen.export.cli import main as export_main
from aigen.export.collect import Pair
from aigen.factory import make_dataset
from aigen.report.cli import main as report_main
from aigen.status import main as status_main
from aigen.verify import main as verify_main
from conftest import compose_config

N = 8  # photos of source=samples


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """The identity control on the sample photos: cheap, and every pair whole."""
    cfg = compose_config("source=samples", "generator=identity", "size=64", "generator.gen_size=64", "logger=none")
    with open_dict(cfg):
        cfg.dataset_dir = str(tmp_path_factory.mktemp("whole") / "samples-identity")
    return make_dataset(cfg).dataset_dir


@pytest.fixture
def copy(whole, tmp_path) -> Path:
    return Path(shutil.copytree(whole, tmp_path / whole.name))


def torn_third_row(dataset: Path) -> str:
    manifest = dataset / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:50] + "\n"
    manifest.write_text("".join(lines))
    return "manifest.jsonl line 3 is not a JSON row"


def record_cut_short(dataset: Path) -> str:
    record = dataset / "dataset.json"
    record.write_bytes(record.read_bytes()[:100])
    return "dataset.json is not valid JSON"


def first_ai_image_gone(dataset: Path) -> str:
    next(iter(sorted((dataset / "ai").iterdir()))).unlink()
    return "1 manifest row without both image files"


def one_line(capsys, fragment: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err


TOOLS: dict[str, Callable[[Path, Path], list[str]]] = {
    "audit": lambda dataset, out: [str(dataset), "--out", str(out)],
    "export": lambda dataset, out: [str(dataset), "--out", str(out)],
    "report": lambda dataset, out: [str(dataset), "--out", str(out)],
}
MAINS = {"audit": audit_main, "export": export_main, "report": report_main}


@pytest.mark.parametrize("damage", [torn_third_row, record_cut_short, first_ai_image_gone])
@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_a_reading_tool_names_the_damage_in_one_line_and_writes_nothing(copy, tmp_path, capsys, tool, damage):
    fragment = damage(copy)
    out = tmp_path / "out"
    assert MAINS[tool](TOOLS[tool](copy, out)) == 2
    one_line(capsys, fragment)
    assert not out.exists()


@pytest.mark.parametrize("damage", [torn_third_row, record_cut_short])
def test_verify_reports_a_record_changed_outside_aigen_as_corrupt(copy, capsys, damage):
    fragment = damage(copy)
    assert verify_main([str(copy)]) == 1
    out = capsys.readouterr().out
    assert any(line.startswith("CORRUPT ") and fragment in line for line in out.splitlines()), out
    assert out.endswith("PROBLEMS FOUND\n")


def test_status_counts_only_pairs_whose_files_are_there(copy, capsys):
    first_ai_image_gone(copy)
    assert status_main([str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"{N - 1} pairs, 0 failed" in out and "1 manifest row without both image files" in out


def test_verify_and_status_take_a_sweeps_dirs_and_fail_when_one_fails(whole, copy, capsys):
    first_ai_image_gone(copy)
    assert status_main([str(whole), str(copy), f"{whole}/"]) == 0
    out = capsys.readouterr().out
    assert out.count(f"{whole}: {N} pairs") == 1 and f"{copy}: {N - 1} pairs" in out
    assert verify_main([str(whole), str(whole)]) == 0 and capsys.readouterr().out.endswith("OK\n")
    assert verify_main([str(whole), str(copy), f"{copy}/"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{whole}: {N} pairs, 0 corrupt")
    assert lines[1].startswith(f"{copy}: {N} pairs, 1 corrupt")
    assert lines[2].startswith("CORRUPT ai/") and lines[3:] == ["PROBLEMS FOUND"]  # each dir once, then its problems
    assert verify_main([str(whole), str(copy / "nowhere")]) == 2  # every dir checked before any is verified
    printed = capsys.readouterr()
    assert "nowhere" in printed.err and printed.out == ""
    record = json.loads((copy / "dataset.json").read_text())
    record["runs"][-1]["state"] = "interrupted"
    (copy / "dataset.json").write_text(json.dumps(record))
    assert status_main([str(whole), str(copy), "--logger", "wandb"]) == 2  # no artifact until every dir is complete
    printed = capsys.readouterr()
    assert "shard(s) [0] have not finished" in printed.err and "artifact" not in printed.out


@pytest.mark.parametrize("damage", [torn_third_row, record_cut_short])
def test_status_names_a_damaged_record_in_one_line(copy, capsys, damage):
    fragment = damage(copy)
    assert status_main([str(copy)]) == 2
    one_line(capsys, fragment)


def test_a_jpeg_that_lost_its_end_is_never_exported(whole, tmp_path):
    """The factory's JPEGs end with the end-of-image marker; a truncated file does not, and is refused by name."""
    dataset = Path(shutil.copytree(whole, tmp_path / whole.name))
    opened = open_dataset(dataset)
    image_id = sorted(opened.rows)[0]
    path = opened.image_path(image_id, "ai")
    pair = Pair(opened, opened.rows[image_id], "train")
    assert pair.image_bytes("ai") == path.read_bytes()
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="is not a whole JPEG"):
        pair.image_bytes("ai")


def test_a_truncated_image_is_one_line_in_the_export(copy, tmp_path, capsys):
    image = next(iter(sorted((copy / "ai").iterdir())))
    image.write_bytes(image.read_bytes()[:2000])
    assert export_main([str(copy), "--out", str(tmp_path / "out")]) == 2
    one_line(capsys, image.name)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tool", ["export", "report"])
def test_the_current_directory_is_never_the_folder_a_tool_replaces(whole, tmp_path, monkeypatch, capsys, tool):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert MAINS[tool]([str(whole), "--out", "."]) == 2
    one_line(capsys, "is (or contains) the current directory")
    assert here.is_dir() and not any(here.iterdir()) and sorted(p.name for p in tmp_path.iterdir()) == ["here"]


@pytest.mark.parametrize(("below", "fragment"), [("", "exists and is not a directory"), ("sub", "which is a file")])
def test_an_audit_out_that_is_or_is_under_a_file_is_refused_before_any_work(whole, tmp_path, capsys, below, fragment):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    assert audit_main([str(whole), "--out", str(file / below if below else file)]) == 2
    one_line(capsys, fragment)
    assert file.read_text() == "mine"


@pytest.mark.parametrize("tool", ["verify", "status", "audit", "export", "report"])
def test_the_folder_above_a_dataset_dir_is_one_line_naming_it(whole, tmp_path, capsys, tool):
    main = {"verify": verify_main, "status": status_main, **MAINS}[tool]
    argv = [str(whole.parent)] + (["--out", str(tmp_path / "out")] if tool in MAINS else [])
    assert main(argv) == 2
    one_line(capsys, f"is not an aigen dataset dir (no dataset.json); it holds 1 dataset dir: {whole.name}")


def test_runs_recorded_before_their_state_was_count_as_finished():
    """Records of an older aigen: a run without `state` finished unless it says it was interrupted (status's rule)."""
    record = {"shard_count": 1, "runs": [{"shard": [0, 1], "selection": "s"}]}
    assert shards_not_finished(record) == [] and unfinished_note(record) is None
    record["runs"].append({"shard": [0, 1], "selection": "s", "interrupted": True})
    assert shards_not_finished(record) == [0]


def test_a_record_line_that_is_not_utf8_is_one_line(copy, capsys):
    with open(copy / "manifest.jsonl", "ab") as handle:
        handle.write(b"\xff\n")
    assert status_main([str(copy)]) == 2
    one_line(capsys, f"manifest.jsonl line {N + 1} is not a JSON row (not UTF-8)")
    assert verify_main([str(copy)]) == 1
    out = capsys.readouterr().out
    assert "a record line does not parse, so no pair was counted or checked" in out and "0 pairs" not in out
