"""Records you can trust: source identity, one row per pair, current failures, stable shards, no trace of a
start that did not happen, money over all shards, settings checked first."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import skimage.data
import torch
from omegaconf import open_dict
from PIL import Image

from aigen.dataset import Shard
from aigen.dataset.layout import paired_ids
from aigen.dataset.record import differences, only_identity_differs
from aigen.errors import UserError
from aigen.factory import build, make_dataset
from aigen.generators.sd import SDImageVariation
from aigen.settings import DEFAULT_GUIDANCE
from aigen.sources import SourceItem
from aigen.status import main as status_main
from aigen.verify import main as verify_main
from conftest import TINY, compose_config, manifest_rows, run_cli, shard_part

PHOTOS = {"astronaut": skimage.data.astronaut, "coffee": skimage.data.coffee, "chelsea": skimage.data.chelsea}


def photo_bytes(name: str, image_format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PHOTOS[name]()).resize((96, 80)).save(buffer, format=image_format)
    return buffer.getvalue()


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    return root


def folder_cfg(root: Path, *overrides: str, data_dir: Path | None = None, dataset_dir: Path | None = None):
    """A tiny run over `root`; the default dataset dir under `data_dir` unless `dataset_dir` is given."""
    cfg = compose_config(*TINY, "source=folder", f"source.root={root}", *overrides)
    with open_dict(cfg):
        cfg.data_dir = str(data_dir or root.parent / "data")
        cfg.dataset_dir = str(dataset_dir) if dataset_dir else None
    return cfg


def raw_rows(path: Path) -> list[dict]:
    """A record file as it is on disk, not through the project's own merge."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_one_row_per_pair(dataset_dir: Path) -> None:
    on_disk = {path.stem for path in (dataset_dir / "ai").glob("*.jpg")}
    for path in dataset_dir.glob("manifest*.jsonl"):
        ids = [row["id"] for row in raw_rows(path)]
        assert len(ids) == len(set(ids)), f"{path.name}: {ids}"
    everything = [row["id"] for path in dataset_dir.glob("manifest*.jsonl") for row in raw_rows(path)]
    assert sorted(everything) == sorted(on_disk)


SAME_NAMES = {"kitchen/a.jpg": photo_bytes("astronaut"), "b.jpg": photo_bytes("coffee")}


def test_two_folders_with_the_same_file_names_never_merge(tmp_path):
    data = tmp_path / "data"
    holiday = make_folder(tmp_path / "holiday", SAME_NAMES)
    work = make_folder(tmp_path / "work", {name: photo_bytes("chelsea") for name in SAME_NAMES})
    first = make_dataset(folder_cfg(holiday, data_dir=data))
    second = make_dataset(folder_cfg(work, data_dir=data))
    assert first.dataset_dir.name.startswith("holiday-sd_tiny-64-")
    assert second.dataset_dir.name.startswith("work-sd_tiny-64-")
    assert first.dataset_dir != second.dataset_dir and second.generated == 2

    # A folder with the same own name elsewhere: same default name, but its identity differs -> refused (most
    # often the same photos moved, or a shard on another node: never a new dataset that makes every pair again),
    other = make_folder(tmp_path / "elsewhere" / "holiday", SAME_NAMES)
    with pytest.raises(UserError, match=rf"photos at another path.*pass source.identity={holiday} to resume"):
        make_dataset(folder_cfg(other, data_dir=data))
    # ... unless the user says the photos are the same ones (e.g. a moved copy).
    assert make_dataset(folder_cfg(other, f"source.identity={holiday}", data_dir=data)).already_done == 2


def test_a_setting_the_default_name_leaves_out_gets_a_dir_of_its_own(tmp_path, capsys):
    """A sweep over steps (not in the name) makes one dir per value; each config resumes its own."""
    data = tmp_path / "data"
    photos = make_folder(tmp_path / "photos", SAME_NAMES)
    plain = make_dataset(folder_cfg(photos, data_dir=data))
    capsys.readouterr()
    seven = make_dataset(folder_cfg(photos, "generator.steps=7", data_dir=data))
    assert f"holds another config's dataset (steps: 5 -> 7): this one goes to {seven.dataset_dir.name}" in (
        capsys.readouterr().out
    )
    assert seven.dataset_dir.parent == plain.dataset_dir.parent and seven.generated == 2
    assert re.fullmatch(rf"{plain.dataset_dir.name}-[0-9a-f]{{8}}", seven.dataset_dir.name)
    again = make_dataset(folder_cfg(photos, "generator.steps=7", data_dir=data))
    assert (again.dataset_dir, again.already_done) == (seven.dataset_dir, 2)
    beside = f"{seven.dataset_dir.name}: this config's dataset dir, versioned beside {plain.dataset_dir.name}"
    assert f"{beside}, another config (steps: 5 -> 7)" in capsys.readouterr().out  # a rerun says why too
    # status says which is which: the plain name went to whichever config ran first.
    capsys.readouterr()
    assert status_main([str(seven.dataset_dir)]) == status_main([str(plain.dataset_dir)]) == 0
    printed = capsys.readouterr().out
    assert f"versioned beside {plain.dataset_dir.name}, another config (steps: 5 -> 7)" in printed
    assert f"another config of this name: {seven.dataset_dir.name} (steps: 5 -> 7)" in printed
    assert make_dataset(folder_cfg(photos, data_dir=data)).already_done == 2
    # Once made, it stays this config's, whatever holds the plain name later.
    shutil.rmtree(plain.dataset_dir)
    capsys.readouterr()
    assert make_dataset(folder_cfg(photos, "generator.steps=7", data_dir=data)).dataset_dir == seven.dataset_dir
    assert "versioned beside" not in capsys.readouterr().out  # nothing there to be beside any more


def test_a_hand_made_dataset_json_at_the_default_name_is_one_line(tmp_path):
    data = tmp_path / "data"
    photos = make_folder(tmp_path / "photos", SAME_NAMES)
    plain = make_dataset(folder_cfg(photos, data_dir=data)).dataset_dir
    (plain / "dataset.json").write_text('{"note": "made by hand"}')
    for overrides in ([], ["generator.steps=7"]):
        with pytest.raises(UserError, match=r"dataset.json has no fingerprint and content: .* not made by run.py"):
            make_dataset(folder_cfg(photos, *overrides, data_dir=data))


def test_a_sweep_job_that_loses_the_race_for_the_default_name_goes_beside_it(tmp_path):
    """Two configs' jobs plan the same free default name at once; the one that opens it second plans again."""
    data = tmp_path / "data"
    photos = make_folder(tmp_path / "photos", SAME_NAMES | {"notes.txt": b"not a photo"})
    cfg = folder_cfg(photos, "generator.steps=7", data_dir=data)
    generator = build(cfg.generator)
    load = generator.load

    def load_while_another_job_starts() -> None:  # between this job's plan and its first write
        load()
        make_dataset(folder_cfg(photos, data_dir=data))

    generator.load = load_while_another_job_starts
    summary = make_dataset(cfg, generator=generator)
    other = data / "processed" / summary.dataset_dir.name.rsplit("-", 1)[0]
    assert summary.dataset_dir != other and summary.generated == 2
    assert len(paired_ids(other)) == len(paired_ids(summary.dataset_dir)) == 2
    [run] = json.loads((summary.dataset_dir / "dataset.json").read_text())["runs"]
    assert run["ignored"]["files that are not images"] == {"count": 1, "examples": ["notes.txt"]}  # once, replanned


def test_only_the_photos_location_differing_is_told_apart_from_nothing_differing():
    assert differences({"a": 1}, {"a": 1, "b": None}) == ["b: unset -> None"]
    assert not only_identity_differs([])
    assert only_identity_differs(["source.identity: '/mnt/a;b/photos' -> '/data/photos'"])
    assert not only_identity_differs(["source.identity: '/a' -> '/b'", "generator.steps: 5 -> 7"])


def test_home_in_source_root_is_expanded(tmp_path, monkeypatch):
    """`~` reaches the code from a YAML file or a quoted override (Hydra's grammar refuses a bare `~`)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    make_folder(tmp_path / "photos", SAME_NAMES)
    cheap = ("generator=identity", "generator.gen_size=64", "size=64", "logger=none")
    result = run_cli(*cheap, "source=folder", "source.root='~/photos'", "source.name=holiday", f"data_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert len(manifest_rows(tmp_path / "processed" / "holiday-identity-64-gen64")) == len(SAME_NAMES)


def test_the_readme_folder_example_works_as_written(tmp_path):
    """The README's line, run by a shell with HOME set, from a fresh folder."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if line.startswith("python run.py source=folder source.root=")]
    command = line.split("#")[0].strip() + " generator=sd_tiny size=64 logger=none"
    make_folder(tmp_path / "photos", SAME_NAMES)
    python = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(tmp_path), "PATH": f"{python}:{os.environ['PATH']}", "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        command.replace("run.py", str(Path(__file__).parents[1] / "run.py")),
        shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "processed").glob("holiday-sd_tiny-64-*/ai/*.jpg"))) == 2


def test_a_replaced_photo_is_regenerated_and_keeps_one_row(tmp_path):
    root = make_folder(tmp_path / "photos", {"a.jpg": photo_bytes("astronaut"), "b.jpg": photo_bytes("coffee")})
    out = make_dataset(folder_cfg(root)).dataset_dir
    before = (out / "original" / "b.jpg").read_bytes()
    (root / "b.jpg").write_bytes(photo_bytes("chelsea"))

    rerun = make_dataset(folder_cfg(root))
    assert (rerun.generated, rerun.already_done) == (1, 1)
    assert (out / "original" / "b.jpg").read_bytes() != before
    [row] = [row for row in raw_rows(out / "manifest.jsonl") if row["id"] == "b"]
    assert row["source_sha256"] == hashlib.sha256(photo_bytes("chelsea")).hexdigest()
    assert_one_row_per_pair(out)
    assert verify_main([str(out)]) == 0


def test_a_photo_replaced_by_a_broken_file_loses_its_stale_pair(tmp_path):
    root = make_folder(tmp_path / "photos", {"a.jpg": photo_bytes("astronaut"), "b.jpg": photo_bytes("coffee")})
    out = make_dataset(folder_cfg(root)).dataset_dir
    (root / "b.jpg").write_bytes(b"no longer a photo")
    assert make_dataset(folder_cfg(root)).failed == 1
    assert not (out / "original" / "b.jpg").exists() and not (out / "ai" / "b.jpg").exists()
    assert [row["id"] for row in raw_rows(out / "manifest.jsonl")] == ["a"]
    [failure] = raw_rows(out / "failures.jsonl")
    assert failure["id"] == "b" and failure["source_sha256"] == hashlib.sha256(b"no longer a photo").hexdigest()
    assert verify_main([str(out)]) == 0


def test_one_row_per_pair_after_a_deleted_pair_is_redone(tiny_cfg):
    out = make_dataset(tiny_cfg()).dataset_dir
    (out / "ai" / "coffee.jpg").unlink()
    assert make_dataset(tiny_cfg()).generated == 1
    assert_one_row_per_pair(out)


def test_one_row_per_pair_in_every_shard_file(tiny_cfg):
    for index in (0, 1):
        out = make_dataset(tiny_cfg("shard.count=2", f"shard.index={index}")).dataset_dir
    (out / "ai" / "coffee.jpg").unlink()
    owner = 0 if Shard(0, 2).owns("coffee") else 1
    assert make_dataset(tiny_cfg("shard.count=2", f"shard.index={owner}")).generated == 1
    assert sorted(p.name for p in out.glob("manifest*.jsonl")) == [
        "manifest.shard0000-of-0002.jsonl",
        "manifest.shard0001-of-0002.jsonl",
    ]
    assert_one_row_per_pair(out)
    # The layout is fixed: an unsharded run into a sharded dir (or the other way round) is refused.
    with pytest.raises(UserError, match="shard.count=2, this run has shard.count=1"):
        make_dataset(tiny_cfg())


def test_verify_fails_on_duplicate_and_stale_rows(tiny_cfg, capsys):
    out = make_dataset(tiny_cfg("limit=2")).dataset_dir
    assert verify_main([str(out)]) == 0
    manifest = out / "manifest.jsonl"
    first = manifest.read_text().splitlines()[0]
    manifest.write_text(manifest.read_text() + first + "\n")
    assert verify_main([str(out)]) == 1
    assert "manifest: 2 rows for" in capsys.readouterr().out
    manifest.write_text("\n".join(manifest.read_text().splitlines()[:-1]) + "\n")
    assert verify_main([str(out)]) == 0
    stale = {"id": json.loads(first)["id"], "source": "x", "stage": "decode", "reason": "old"}
    (out / "failures.jsonl").write_text(json.dumps(stale) + "\n")
    assert verify_main([str(out)]) == 1
    assert "stale row for" in capsys.readouterr().out


def test_failures_list_only_the_photos_still_broken_once(tmp_path):
    root = make_folder(
        tmp_path / "photos",
        {"good.jpg": photo_bytes("astronaut"), "broken1.jpg": b"not a jpeg", "broken2.jpg": b"nor this"},
    )
    cfg = ("max_failure_ratio=1",)
    out = make_dataset(folder_cfg(root, *cfg)).dataset_dir
    make_dataset(folder_cfg(root, *cfg))  # a rerun meets both again
    assert sorted(row["id"] for row in raw_rows(out / "failures.jsonl")) == ["broken1", "broken2"]
    (root / "broken1.jpg").write_bytes(photo_bytes("coffee"))
    assert make_dataset(folder_cfg(root, *cfg)).generated == 1
    [row] = raw_rows(out / "failures.jsonl")
    assert row["id"] == "broken2" and row["stage"] == "decode"
    assert verify_main([str(out)]) == 0


def test_files_are_taken_by_content_and_non_images_are_named(tmp_path, capsys):
    root = make_folder(
        tmp_path / "photos",
        {
            "anim.gif": photo_bytes("astronaut", "GIF"),
            "photo.jfif": photo_bytes("coffee"),
            "photo2.jpe": photo_bytes("chelsea"),
            "raw.ppm": photo_bytes("coffee", "PPM"),
            "no_extension": photo_bytes("astronaut", "PNG"),
            "notes.txt": b"field notes, not a photo",
        },
    )
    summary = make_dataset(folder_cfg(root))
    assert summary.generated == 5
    out = capsys.readouterr().out
    assert "ignored 1 file that is not an image (e.g. notes.txt)" in out
    assert f"reasons in {summary.dataset_dir}" not in out  # nothing failed
    record = json.loads((summary.dataset_dir / "dataset.json").read_text())
    assert record["runs"][-1]["ignored"] == {"files that are not images": {"count": 1, "examples": ["notes.txt"]}}
    with Image.open(summary.dataset_dir / "original" / "anim.jpg") as image:
        assert image.size == (64, 64)


def items(count: int) -> list[SourceItem]:
    return [SourceItem(f"img{n:03d}", Path(f"/x/{n}.jpg"), f"{n}.jpg", "") for n in range(count)]


def test_adding_photos_never_moves_an_id_to_another_shard():
    before = {k: {i.id for i in shard_part(items(40), 0, Shard(k, 4))} for k in range(4)}
    after = {k: {i.id for i in shard_part(items(100), 0, Shard(k, 4))} for k in range(4)}
    for k in range(4):
        assert before[k] <= after[k]
    assert set().union(*before.values()) == {item.id for item in items(40)}
    assert all(after.values())


def test_a_failed_start_leaves_no_trace(tmp_path):
    out = tmp_path / "out"
    result = run_cli(*TINY, "generator.cache_dir=/proc/nope", f"dataset_dir={out}")
    assert result.returncode != 0 and not out.exists()


def test_money_is_bounded_over_all_shards(tmp_path):
    """8 photos at $1 with max_cost $5: each shard alone would fit, the dataset does not, so every shard refuses."""
    for index in range(4):
        cfg = compose_config(
            "source=samples", "generator=dalle2", "generator.price=1", "generator.max_cost=5", "logger=none",
            "size=64", "shard.count=4", f"shard.index={index}", f"dataset_dir={tmp_path / 'out'}",
        )  # fmt: skip
        with pytest.raises(UserError, match=r"estimated cost \$8.00 for the 8 images still missing in the whole"):
            make_dataset(cfg)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("limit=-1", "limit=-1 must be a whole number"),
        ("limit=ten", "limit='ten' must be a whole number"),
        ("seed=1.5", "seed=1.5 must be a whole number"),
        ("sample_seed=x", "sample_seed='x' must be a whole number"),
        ("workers=0", "workers=0 must be a whole number, at least 1"),
        ("generator.steps=0", "generator.steps=0 must be a whole number, at least 1"),
        ("max_failure_ratio=2", "max_failure_ratio=2 must be a number between 0 and 1"),
    ],
)
def test_a_bad_setting_is_a_user_error_before_any_work(tiny_cfg, tmp_path, override, fragment):
    with pytest.raises(UserError) as raised:
        make_dataset(tiny_cfg(override))
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("generator", "fragment"),
    [("vae_tiny", ", which has no guidance$"), ("img2img_tiny", ": its guidance is generator.guidance_scale=.*; set")],
)
def test_guidance_a_generator_does_not_read_is_refused(tiny_cfg, tmp_path, generator, fragment):
    """A sweep over the top-level guidance_scale would make one dataset again and again for such a generator."""
    assert compose_config().guidance_scale == DEFAULT_GUIDANCE  # unset: never refused
    with pytest.raises(UserError, match=f"^guidance_scale=7 is not read by generator={generator}{fragment}"):
        make_dataset(tiny_cfg(f"generator={generator}", "guidance_scale=7"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("device", "gpus", "fragment"),
    [("cuda", 0, "generator.device=cuda: torch sees no CUDA GPU"), ("cuda:2", 2, "this machine has 2 CUDA GPU(s)")],
)
def test_a_gpu_the_machine_does_not_have_is_one_line_before_any_work(
    tiny_cfg, tmp_path, monkeypatch, device, gpus, fragment
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    with pytest.raises(UserError, match=re.escape(fragment)):
        make_dataset(tiny_cfg(f"generator.device={device}"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (("source=folder",), "source.root is not set"),
        (("generator=dalle2", "generator.concurrency=0"), "generator.concurrency=0"),
        (("generator=sd", "generator.model=/no/such/model"), "folder does not exist"),
    ],
)
def test_bad_settings_on_the_command_line_are_one_line(tmp_path, overrides, fragment):
    result = run_cli("source=samples", "size=64", "logger=none", *overrides, f"dataset_dir={tmp_path / 'o'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert fragment in line
    assert not (tmp_path / "o").exists()


def test_the_model_error_mentions_hf_hub_offline_only_when_set(monkeypatch):
    generator = SDImageVariation("org/model", "main", steps=1, guidance_scale=3.0, gen_size=64)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    message = generator.load_error(OSError("not found"))
    assert "HF_HUB_OFFLINE" not in message and "hf download org/model --revision main" in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE is set" in generator.load_error(OSError("not found"))


def test_paired_ids_are_the_ids_with_both_files(tmp_path):
    """What a start counts as done: both halves on disk as files; temporaries, one half, a dangling link are not."""
    for half in ("original", "ai"):
        (tmp_path / half).mkdir()
        for name in ("both.jpg", "a.jpg.jpg", ".both.shard0.tmp", ".both.replacing"):
            (tmp_path / half / name).write_bytes(b"x")
        (tmp_path / half / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
        (tmp_path / half / "linked.jpg").symlink_to(tmp_path / half / "both.jpg")
    (tmp_path / "original" / "one_half.jpg").write_bytes(b"x")
    assert paired_ids(tmp_path) == {"both", "a.jpg", "linked"}
    shutil.rmtree(tmp_path / "ai")
    assert paired_ids(tmp_path) == set()
