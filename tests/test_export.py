"""python -m aigen.export: Parquet and WebDataset exports that load back with the exact JPEG bytes, the detector's
split, several generators in one export, and a dataset card that `datasets` loads the export by."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from omegaconf import open_dict

from aigen.audit import main as audit_main
from aigen.cli import split_defaults
from aigen.export.cli import main as export_main
from aigen.export.collect import HUB_SPLITS, SPLITS
from aigen.export.licenses import UNKNOWN, hub_license, model_terms, source_terms
from aigen.factory import make_dataset
from aigen.splits import content_key, split_of
from aigen.status import main as status_main
from conftest import TINY, compose_config, manifest_rows

datasets = pytest.importorskip("datasets")
HALVES = ("original", "ai")
N = 8  # photos of source=samples


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, object]:
    """Two dataset dirs over the same photos: sd_tiny and the identity control (cheap, no seed)."""
    root = tmp_path_factory.mktemp("zoo")
    dirs = {}
    for generator in ("sd_tiny", "identity"):
        overrides = [o for o in TINY if not o.startswith("generator=")] + [f"generator={generator}"]
        cfg = compose_config(*overrides)
        with open_dict(cfg):
            cfg.dataset_dir = str(root / f"samples-{generator}")
        dirs[generator] = make_dataset(cfg).dataset_dir
    return dirs


def export(*args: object) -> None:
    assert export_main([str(arg) for arg in args]) == 0


def expected_split(dataset_dir, row: dict, val: float = split_defaults()["val_fraction"]) -> str:
    """The split python -m aigen.detect gives this pair with its default settings."""
    return HUB_SPLITS[split_of(content_key(dataset_dir, row), 0, val, split_defaults()["test_fraction"])]


def load(path, tmp_path, *args, **kwargs) -> dict:
    """datasets.load_dataset with the images undecoded ({bytes, path}), as {split: Dataset}."""
    loaded = datasets.load_dataset(str(path), *args, cache_dir=str(tmp_path / "hf-cache"), **kwargs)
    for split, dataset in loaded.items():
        for column, feature in dataset.features.items():
            if isinstance(feature, datasets.Image):
                loaded[split] = loaded[split].cast_column(column, datasets.Image(decode=False))
    return loaded


def assert_pairs_match(rows: list[dict], dirs: dict[str, object]) -> None:
    """Every exported pair has exactly the files' bytes, the manifest's settings and the detector's split."""
    by_dir = {path.name: {row["id"]: row for row in manifest_rows(path)} for path in dirs.values()}
    paths = {path.name: path for path in dirs.values()}
    for row in rows:
        manifest = by_dir[row["dataset"]][row["id"]]
        for half in HALVES:
            assert row[half]["bytes"] == (paths[row["dataset"]] / manifest[half]).read_bytes()
        assert row["split"] == expected_split(paths[row["dataset"]], manifest)
        assert {key: row[key] for key in manifest if key not in HALVES} == {
            key: value for key, value in manifest.items() if key not in HALVES
        }
        assert row["alignment"] == manifest.get("alignment")  # null where the generator records none


def test_parquet_export_has_every_pair_with_the_exact_jpeg_bytes(zoo, tmp_path):
    export(zoo["sd_tiny"], "--out", tmp_path / "out")
    loaded = load(tmp_path / "out", tmp_path)
    rows = [row for dataset in loaded.values() for row in dataset]
    assert len(rows) == N and set(loaded) <= set(SPLITS)
    assert all(row["split"] == split for split, dataset in loaded.items() for row in dataset)
    assert_pairs_match(rows, {"sd_tiny": zoo["sd_tiny"]})
    assert {row["generator"] for row in rows} == {"sd_tiny"} and all(isinstance(row["seed"], int) for row in rows)


def test_parquet_shards_are_capped_by_size(zoo, tmp_path):
    export(zoo["sd_tiny"], "--out", tmp_path / "out", "--max-shard-mb", 0.02)
    shards = sorted((tmp_path / "out" / "data").glob("train-*.parquet"))
    assert len(shards) > 1 and shards[-1].name.endswith(f"-of-{len(shards):05d}.parquet")
    loaded = load(tmp_path / "out", tmp_path)
    assert sum(len(dataset) for dataset in loaded.values()) == N


def test_webdataset_export_reads_back_with_webdataset_and_datasets(zoo, tmp_path):
    wds = pytest.importorskip("webdataset")
    export(zoo["sd_tiny"], "--out", tmp_path / "out", "--format", "webdataset")
    tars = sorted(glob.glob(str(tmp_path / "out" / "data" / "*.tar")))
    samples = list(wds.WebDataset(tars, shardshuffle=False, empty_check=False))
    assert len(samples) == N
    manifest = {row["id"]: row for row in manifest_rows(zoo["sd_tiny"])}
    for sample in samples:
        record = json.loads(sample["json"])
        assert sample["__key__"] == record["id"]
        assert record.items() >= manifest[record["id"]].items()  # the manifest row, and the export's columns
        assert record["split"] == expected_split(zoo["sd_tiny"], manifest[record["id"]])
        for half in HALVES:
            assert sample[f"{half}.jpg"] == (zoo["sd_tiny"] / manifest[record["id"]][half]).read_bytes()
    loaded = load("webdataset", tmp_path, data_files={"train": tars})
    assert len(loaded["train"]) == N
    assert loaded["train"][0]["original.jpg"]["bytes"] == samples[0]["original.jpg"]
    by_card = load(tmp_path / "out", tmp_path)
    assert sum(len(dataset) for dataset in by_card.values()) == N


def test_two_generators_over_the_same_photos_make_one_export(zoo, tmp_path):
    export(zoo["sd_tiny"], zoo["identity"], "--out", tmp_path / "out")
    loaded = load(tmp_path / "out", tmp_path)
    rows = [row for dataset in loaded.values() for row in dataset]
    assert len(rows) == 2 * N
    assert sorted(row["generator"] for row in rows) == ["identity"] * N + ["sd_tiny"] * N
    assert_pairs_match(rows, zoo)
    splits = {}
    for row in rows:
        assert splits.setdefault(row["id"], row["split"]) == row["split"]  # the same photo, the same split
    assert len(splits) == N
    assert {row["seed"] is None for row in rows if row["generator"] == "identity"} == {True}


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_yaml_points_at_the_shards_and_datasets_loads_by_it(zoo, tmp_path):
    """With val 0: the card lists only splits that have shards (datasets fails on a split without files)."""
    assert audit_main([str(zoo["sd_tiny"]), "--out", str(tmp_path / "audit")]) == 0
    out = tmp_path / "out"
    export(zoo["sd_tiny"], zoo["identity"], "--out", out, "--val-fraction", 0, "--audit", tmp_path / "audit")
    card = (out / "README.md").read_text()
    meta = front_matter(card)
    [config] = meta["configs"]
    listed = {entry["split"]: entry["path"] for entry in config["data_files"]}
    assert "validation" not in listed and "train" in listed
    for pattern in listed.values():
        assert glob.glob(str(out / pattern)), pattern
    assert meta["task_categories"] == ["image-classification"] and meta["size_categories"] == ["n<1K"]
    assert meta["license"] == "other"  # scikit-image photos + a random model + a control: all stated
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))
    assert set(loaded) == set(listed) and sum(len(d) for d in loaded.values()) == 2 * N
    assert isinstance(loaded["train"].features["ai"], datasets.Image)
    assert "(random weights: no trained model)" in card and "vanderwalt2014scikit" in card
    assert "| `samples-sd_tiny` |" in card and "sharper" in card  # the audit's bias table, only where audited
    assert "![original | AI pairs](preview.png)" in card and (out / "preview.png").stat().st_size > 0
    assert "hf upload <user>/out . . --repo-type dataset" in card


def test_only_an_audit_of_the_dataset_as_it_is_goes_in_the_card(zoo, tmp_path, monkeypatch, capsys):
    """The default audit folder is found by the dir's name, which another config, data_dir or a resume shares: an
    audit that measured other settings or other pairs is passed over (and said so), and an --audit of none of the
    dirs is refused."""
    monkeypatch.chdir(tmp_path)
    assert audit_main([str(zoo["identity"])]) == 0  # ./outputs/audit-samples-identity
    export(zoo["identity"], "--out", tmp_path / "current")
    assert "| `samples-identity` |" in (tmp_path / "current" / "README.md").read_text()
    fewer = shutil.copytree(zoo["identity"], tmp_path / "elsewhere" / "samples-identity")
    rows = (fewer / "manifest.jsonl").read_text().splitlines(keepends=True)
    (fewer / "manifest.jsonl").write_text("".join(rows[1:]))  # the same name and settings, one pair fewer
    capsys.readouterr()
    export(fewer, "--out", tmp_path / "fewer")
    assert "Not audited" in (tmp_path / "fewer" / "README.md").read_text()
    assert "not shown: " in capsys.readouterr().out
    audit_dir = tmp_path / "outputs" / "audit-samples-identity"
    assert export_main([str(fewer), "--out", str(tmp_path / "refused"), "--audit", str(audit_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "with other settings or other pairs than any dataset dir given" in err
    assert not (tmp_path / "refused").exists()


def test_a_dataset_whose_shards_have_not_all_finished_is_exported_only_when_allowed(tmp_path, capsys):
    overrides = ["source=samples", "generator=identity", "size=64", "logger=none", "shard.count=2", "shard.index=0"]
    cfg = compose_config(*overrides)
    with open_dict(cfg):
        cfg.dataset_dir = str(tmp_path / "half")
    half = make_dataset(cfg).dataset_dir
    assert export_main([str(half), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shard(s) [1] of 2 have not finished" in err and "--allow-incomplete" in err
    assert not (tmp_path / "out").exists()
    assert status_main([str(half)]) == 0  # the same rule as the export's
    assert "1 of 2 shards finished; not yet: [1]" in capsys.readouterr().out
    export(half, "--out", tmp_path / "out", "--allow-incomplete")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "**Not finished**: `half`: shard(s) [1] of 2 have not finished: it holds the pairs made so far." in card


def test_licences_are_named_never_guessed():
    indoor = source_terms({"name": "indoor", "identity": "MIT Indoor67"})
    assert indoor.license == "unknown / see the dataset's terms (Quattoni and Torralba, CVPR 2009)"
    assert "Quattoni" in indoor.citation
    sd = model_terms({"generator": "sd", "model": "lambdalabs/sd-image-variations-diffusers"})
    assert sd.license == "creativeml-openrail-m"
    assert hub_license([indoor, sd]) == "unknown"
    folder = source_terms({"name": "holiday", "identity": "/home/me/photos"})
    local_model = model_terms({"generator": "sd", "model": "/models/sd-iv"})
    assert folder.license == local_model.license == UNKNOWN
    assert "OpenAI" in model_terms({"generator": "gpt_image", "model": "gpt-image-2"}).license


@pytest.mark.parametrize(
    "case",
    ["missing", "not a dataset", "out inside", "out not empty", "overwrite a stranger", "bad fraction", "same name"],
)
def test_user_errors_are_one_line_and_exit_2(case, zoo, tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    (tmp_path / "samples-sd_tiny").mkdir()
    (tmp_path / "samples-sd_tiny" / "dataset.json").write_text("{}")
    args = {
        "missing": [tmp_path / "nope", "--out", tmp_path / "out"],
        "not a dataset": [tmp_path / "plain", "--out", tmp_path / "out"],
        "out inside": [zoo["sd_tiny"], "--out", zoo["sd_tiny"] / "export"],
        "out not empty": [zoo["sd_tiny"], "--out", tmp_path / "full"],
        "overwrite a stranger": [zoo["sd_tiny"], "--out", tmp_path / "full", "--overwrite"],
        "bad fraction": [zoo["sd_tiny"], "--out", tmp_path / "out", "--test-fraction", 1.5],
        "same name": [zoo["sd_tiny"], tmp_path / "samples-sd_tiny", "--out", tmp_path / "out"],
    }[case]
    if case == "same name":  # a second whole dir of the same name
        shutil.rmtree(tmp_path / "samples-sd_tiny")
        shutil.copytree(zoo["identity"], tmp_path / "samples-sd_tiny")
    assert export_main([str(arg) for arg in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert case != "same name" or "have the same name" in err
    assert not (tmp_path / "out").exists() and (tmp_path / "full" / "notes.txt").read_text() == "mine"
    assert not (zoo["sd_tiny"] / "export").exists()


def test_cli_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "aigen.export", str(tmp_path / "nope"), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr == f"error: {tmp_path / 'nope'} is not a directory\n"


def test_overwrite_replaces_an_export_and_a_failed_export_leaves_nothing(zoo, tmp_path):
    out = tmp_path / "out"
    export(zoo["sd_tiny"], "--out", out, "--format", "webdataset")
    export(zoo["sd_tiny"], "--out", out, "--overwrite")
    assert list((out / "data").glob("*.parquet")) and not list((out / "data").glob("*.tar"))
    broken = tmp_path / "samples-broken"
    broken.mkdir()
    for name in ("dataset.json", "manifest.jsonl"):
        (broken / name).write_bytes((zoo["identity"] / name).read_bytes())
    assert export_main([str(broken), "--out", str(tmp_path / "new")]) == 2  # its images are missing
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "samples-broken"]
