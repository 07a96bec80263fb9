"""source=hf, webdataset and parquet: the same photos make the same pairs as a folder of them; bad rows are recorded
skips, bad settings one line; the source hash cache spares a start from reading unchanged photos."""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import json
import os
import shlex
import shutil
import tarfile
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.json
import pyarrow.parquet as pq
import pytest
from hydra.utils import instantiate

from aigen.dataset import read_rows
from aigen.dataset.record import READING_RECORDED, fingerprint
from aigen.errors import UserError
from aigen.factory import make_dataset
from aigen.hash_cache import cache_files
from aigen.sources import MAX_ID_BYTES, SourceItem
from aigen.sources_hf import ROWS_KEPT, StreamCursor
from aigen.sources_webdataset import WebDatasetSource
from conftest import CONF, compose_config, file_bytes, manifest_rows

PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "rocket.jpg")
CHEAP = ("generator=identity", "size=64")


def bundled(name: str) -> bytes:
    return (importlib.resources.files("skimage.data") / name).read_bytes()


def write_shard(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def img2dataset_members(names: list[str]) -> list[tuple[str, bytes]]:
    """`KEY.<ext>` + `KEY.json` + `KEY.txt` per photo, as img2dataset writes a shard."""
    members = []
    for name in names:
        key = Path(name).stem
        members += [(name, bundled(name)), (f"{key}.json", json.dumps({"key": key}).encode()), (f"{key}.txt", b"")]
    return members


@pytest.fixture(scope="session")
def collection(tmp_path_factory) -> dict[str, list[str]]:
    """The same photos as a folder, a saved HF dataset, two WebDataset shards and two Parquet files: the
    overrides that read each."""
    root = tmp_path_factory.mktemp("collection")
    (root / "folder").mkdir()
    for name in PHOTOS:
        shutil.copy(importlib.resources.files("skimage.data") / name, root / "folder" / name)
    stems = [Path(name).stem for name in PHOTOS]
    files = [str(root / "folder" / name) for name in PHOTOS]
    hf = datasets.Dataset.from_dict({"image": files, "name": stems}).cast_column("image", datasets.Image())
    hf.save_to_disk(str(root / "hf"), num_shards=2)
    (root / "wds").mkdir()
    for shard in range(2):
        write_shard(root / "wds" / f"{shard:05d}.tar", img2dataset_members(list(PHOTOS[shard::2])))
    (root / "parquet").mkdir()
    for part in range(2):
        cells = [{"bytes": bundled(name), "path": name} for name in PHOTOS[part * 3 : part * 3 + 3]]
        table = pa.table({"image": cells, "name": stems[part * 3 : part * 3 + 3]})
        pq.write_table(table, root / "parquet" / f"part-{part}.parquet", row_group_size=2)
    return {
        "folder": ["source=folder", f"source.root={root / 'folder'}"],
        "hf": ["source=hf", f"source.dataset={root / 'hf'}", "source.id_column=name"],
        "hf-streaming": [
            "source=hf",
            f"source.dataset={root / 'hf'}",
            "source.id_column=name",
            "source.streaming=true",
        ],
        "webdataset": ["source=webdataset", f"source.urls='{root / 'wds'}/{{00000..00001}}.tar'"],
        "parquet": ["source=parquet", f"source.path={root / 'parquet'}", "source.id_column=name"],
    }


@pytest.fixture(scope="session")
def folder_pairs(collection, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("folder-pairs") / "out"
    make_dataset(compose_config(*collection["folder"], *CHEAP, "logger=none", f"dataset_dir={out}"))
    return out


def by_id(dataset_dir: Path) -> dict[str, str]:
    return {row["id"]: row["source_sha256"] for row in manifest_rows(dataset_dir)}


@pytest.mark.parametrize("kind", ["hf", "hf-streaming", "webdataset", "parquet"])
def test_the_same_photos_make_the_same_pairs_as_a_folder(kind, collection, folder_pairs, tiny_cfg, tmp_path):
    """An HF dataset saved to disk (mapped or streamed), WebDataset shards and Parquet files: same ids, same
    source_sha256, same bytes as the folder of the same photos."""
    out = make_dataset(tiny_cfg(*collection[kind], *CHEAP)).dataset_dir
    assert len(manifest_rows(out)) == len(PHOTOS)
    assert by_id(out) == by_id(folder_pairs)
    assert file_bytes(out) == file_bytes(folder_pairs)


@pytest.mark.parametrize("kind, other", [("hf", "source.id_column=null"), ("webdataset", "source.extension=jpg")])
def test_reading_the_photos_otherwise_is_another_dataset(kind, other, collection, tiny_cfg, tmp_path):
    """The column that names the photos, or the member of a sample that is the photo, decides the pairs: another
    value never resumes into (nor deletes from) the dataset the first one made."""
    first = make_dataset(tiny_cfg(*collection[kind], *CHEAP)).dataset_dir
    before = file_bytes(first)
    with pytest.raises(UserError, match=r"different config \(source\.reading"):
        make_dataset(tiny_cfg(*collection[kind], *CHEAP, other))
    assert file_bytes(first) == before


def test_a_dataset_made_before_reading_was_recorded_resumes(collection, tiny_cfg, tmp_path):
    first = make_dataset(tiny_cfg(*collection["hf"], *CHEAP)).dataset_dir
    record = json.loads((first / "dataset.json").read_text())
    del record["content"]["source"]["reading"], record[READING_RECORDED]  # as an earlier aigen wrote it
    record["fingerprint"] = fingerprint(record["content"])
    (first / "dataset.json").write_text(json.dumps(record))
    assert make_dataset(tiny_cfg(*collection["hf"], *CHEAP)).already_done == len(PHOTOS)


def test_the_source_jpeg_history_is_read_from_a_container(collection, folder_pairs, tiny_cfg, tmp_path):
    """pairing.jpeg_history=matched reads the source JPEG's tables from the bytes in the container."""
    matched = (*CHEAP, "pairing.jpeg_history=matched")
    folder = make_dataset(tiny_cfg(*collection["folder"], *matched, dataset_dir=tmp_path / "folder")).dataset_dir
    parquet = make_dataset(tiny_cfg(*collection["parquet"], *matched, dataset_dir=tmp_path / "parquet")).dataset_dir
    assert file_bytes(parquet) == file_bytes(folder)
    assert file_bytes(parquet)["ai/rocket.jpg"] != file_bytes(folder_pairs)["ai/rocket.jpg"]  # the history is used


def test_samples_with_the_same_key_in_two_shards_get_distinct_stable_ids(tmp_path):
    for shard, photo in enumerate(("astronaut.png", "rocket.jpg")):
        write_shard(tmp_path / f"{shard}.tar", [("photo.png", bundled(photo))])
    items = instantiate(compose_config("source=webdataset", f"source.urls='{tmp_path}/{{0..1}}.tar'").source).items()
    assert len({item.id for item in items}) == 2 and all(item.id.startswith("photo-") for item in items)
    alone = instantiate(compose_config("source=webdataset", f"source.urls={tmp_path}/1.tar").source).items()
    assert alone[0].id == "photo" and alone[0].photo_file().read() == bundled("rocket.jpg")


def test_every_new_source_composes_and_lists_its_photos(collection):
    for kind in ("hf", "hf-streaming", "webdataset", "parquet"):
        source = instantiate(compose_config(*collection[kind]).source)
        assert sorted(item.id for item in source.items()) == sorted(Path(name).stem for name in PHOTOS), kind


def test_default_ids_are_the_same_streamed_or_not(collection):
    """Without an id column, a row's id is its number in the split, streamed or not."""
    hf = [override for override in collection["hf"] if "id_column" not in override]
    mapped = instantiate(compose_config(*hf).source).items()
    streamed = instantiate(compose_config(*hf, "source.streaming=true").source).items()
    assert [item.id for item in mapped] == [f"{row:09d}" for row in range(len(PHOTOS))]
    assert [item.id for item in streamed] == [item.id for item in mapped]
    assert [item.photo_file().read() for item in streamed] == [item.photo_file().read() for item in mapped]


def test_limit_shards_and_resume_work_as_on_a_folder(collection, tiny_cfg, tmp_path):
    limited = make_dataset(tiny_cfg(*collection["folder"], *CHEAP, "limit=3", dataset_dir=tmp_path / "folder"))
    out = tmp_path / "wds"
    for index in range(2):
        make_dataset(tiny_cfg(*collection["webdataset"], *CHEAP, "limit=3", "shard.count=2", f"shard.index={index}",
                              dataset_dir=out))  # fmt: skip
    assert by_id(out) == by_id(limited.dataset_dir)
    assert file_bytes(out) == file_bytes(limited.dataset_dir)
    assert len(cache_files(out)) == 2  # one hash cache per shard
    resumed = make_dataset(tiny_cfg(*collection["webdataset"], *CHEAP, "limit=3", "shard.count=2", dataset_dir=out))
    assert resumed.generated == 0 and resumed.already_done == resumed.selected


@pytest.mark.parametrize("kind", ["hf", "webdataset", "parquet"])
def test_a_dry_run_writes_nothing(kind, collection, tiny_cfg, tmp_path, capsys):
    out = tmp_path / "out"
    dry_run = ("generator=gpt_image", "generator.dry_run=true")
    summary = make_dataset(tiny_cfg(*collection[kind], *dry_run, dataset_dir=out))
    assert summary.selected == len(PHOTOS) and "dry run" in capsys.readouterr().out
    assert not out.exists()


def bad_rows_sources(root: Path) -> dict[str, list[str]]:
    """Two good photos, one cell of undecodable bytes and one empty cell, in each kind of container."""
    good = [bundled("astronaut.png"), bundled("rocket.jpg")]
    cells = [*good, b"not an image", None]
    names = ["good0", "good1", "garbage", "empty"]
    hf = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"image": cells, "name": names})})
    hf.save_to_disk(str(root / "hf"))
    write_shard(root / "bad.tar", [("good0.png", good[0]), ("good1.jpg", good[1]), ("garbage.jpg", cells[2]),
                                   ("empty.json", b"{}")])  # fmt: skip
    structs = [{"bytes": cell, "path": None} for cell in cells]
    pq.write_table(pa.table({"image": structs, "name": names}), root / "bad.parquet")
    return {
        "hf": ["source=hf", f"source.dataset={root / 'hf'}", "source.id_column=name"],
        "webdataset": ["source=webdataset", f"source.urls={root / 'bad.tar'}"],
        "parquet": ["source=parquet", f"source.path={root / 'bad.parquet'}", "source.id_column=name"],
    }


@pytest.mark.parametrize("kind", ["hf", "webdataset", "parquet"])
def test_bad_rows_are_recorded_skips(kind, tiny_cfg, tmp_path):
    sources = bad_rows_sources(tmp_path)
    summary = make_dataset(tiny_cfg(*sources[kind], *CHEAP, "max_failure_ratio=0.6"))
    assert (summary.generated, summary.failed) == (2, 2)
    failures = read_rows(summary.dataset_dir, "failures")
    assert failures["garbage"]["stage"] == "decode"
    assert failures["garbage"]["reason"] == "not a readable image: cannot identify image file"  # no BytesIO address
    assert failures["empty"]["stage"] == "read", failures["empty"]
    assert sorted(row["id"] for row in manifest_rows(summary.dataset_dir)) == ["good0", "good1"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["source=hf", "source.dataset={root}/nowhere"], "source.dataset="),
        (["source=hf", "source.dataset=nobody/no-such-dataset"], "Couldn't reach"),
        (["source=hf", "source.dataset={root}/hf", "source.image_column=photo"], "source.image_column='photo'"),
        (["source=hf", "source.dataset={root}/hf", "source.id_column=key"], "source.id_column='key'"),
        (["source=hf", "source.dataset={root}/hf", "source.image_column=name"], "not images or bytes"),
        (["source=hf", "source.dataset={root}/hf", "source.split=test"], "no split 'test' (splits: train)"),
        (["source=webdataset", "source.urls='{root}/missing-{{0..1}}.tar'"], "2 of 2 webdataset shards do not exist"),
        (["source=webdataset", "source.urls=https://example.com/0.tar"], "is not a local file"),
        (["source=parquet", "source.path={root}/nowhere"], "does not exist"),
        (["source=parquet", "source.path={root}/bad.parquet", "source.image_column=photo"], "'photo' is not a column"),
        (["source=parquet", "source.path={root}/bad.parquet", "source.image_column=name"], "not image bytes"),
        (["source=parquet", "source.path={root}/bad.tar"], "not a readable Parquet file"),
        (["source=webdataset", "source.urls={root}/bad.parquet"], "...): bad.parquet ("),
    ],
)
def test_a_missing_dataset_or_column_is_one_line_before_any_work(overrides, message, tiny_cfg, tmp_path):
    bad_rows_sources(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(UserError) as error:
        make_dataset(tiny_cfg(*(override.format(root=tmp_path) for override in overrides), *CHEAP, dataset_dir=out))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not out.exists()


def test_the_folder_config_shows_a_command_hydra_accepts():
    example = (CONF / "source" / "folder.yaml").read_text().splitlines()[0].split("python run.py ", 1)[1]
    assert compose_config(*shlex.split(example)).source.root == "~/photos"


def test_a_split_of_a_dataset_saved_without_split_names_is_refused(collection):
    """A dataset saved without a split name is the train split: another split is a mistake, not all the rows."""
    with pytest.raises(UserError, match="has no split name .* not source.split='test'"):
        instantiate(compose_config(*collection["hf"], "source.split=test").source).items()


def test_ids_from_a_column_are_names_a_dataset_dir_keeps(tmp_path):
    """An id never starts with "." (a hidden file) and never outgrows a file name; ordinary ids stay as they are."""
    captions = [".hidden", "plain", "a long caption " * 20, "a long caption " * 20 + "!", "é" * 200]
    cells = [bundled("rocket.jpg")] * len(captions)
    datasets.Dataset.from_dict({"image": cells, "caption": captions}).save_to_disk(str(tmp_path / "hf"))
    overrides = ("source=hf", f"source.dataset={tmp_path / 'hf'}", "source.id_column=caption")
    ids = [item.id for item in instantiate(compose_config(*overrides).source).items()]
    assert "_hidden" in ids and "plain" in ids and len(set(ids)) == len(captions)
    assert all(len(image_id.encode()) <= MAX_ID_BYTES for image_id in ids)


def test_a_stream_is_followed_forward_and_restarted_only_for_rows_behind_it():
    opened = []

    def open_stream():
        opened.append(1)
        return iter(range(100))

    cursor = StreamCursor(open_stream)
    assert [cursor.cell(row) for row in (0, 2, 1, 5, 3, 50)] == [0, 2, 1, 5, 3, 50]
    assert len(opened) == 1  # rows a little behind come from the last few rows kept
    assert len(cursor.recent) == ROWS_KEPT  # and no more: memory does not grow with the stream
    assert cursor.cell(50 - ROWS_KEPT) == 50 - ROWS_KEPT and len(opened) == 2


# The source hash cache.


@pytest.fixture
def count_reads(monkeypatch) -> list[str]:
    """Every photo whose bytes are read to be hashed, by cache key."""
    reads: list[str] = []
    original = SourceItem.sha256_of_bytes

    def counted(item: SourceItem) -> str:
        reads.append(item.cache_key())
        return original(item)

    monkeypatch.setattr(SourceItem, "sha256_of_bytes", counted)
    return reads


@pytest.mark.parametrize("kind", ["folder", "webdataset", "parquet", "hf"])
def test_a_second_start_reads_no_unchanged_photo(kind, collection, tiny_cfg, tmp_path, count_reads):
    cfg = tiny_cfg(*collection[kind], *CHEAP)
    make_dataset(cfg)
    assert len(count_reads) == len(PHOTOS)
    count_reads.clear()
    assert make_dataset(tiny_cfg(*collection[kind], *CHEAP)).already_done == len(PHOTOS)
    assert count_reads == []


def test_a_touched_or_changed_file_is_hashed_again(tiny_cfg, tmp_path, count_reads):
    root = tmp_path / "photos"
    root.mkdir()
    for name in PHOTOS[:3]:
        (root / name).write_bytes(bundled(name))
    make_dataset(tiny_cfg("source=folder", f"source.root={root}", *CHEAP))
    count_reads.clear()
    os.utime(root / PHOTOS[0], ns=(1, 1))  # touched: same bytes, another mtime
    (root / PHOTOS[1]).write_bytes(bundled(PHOTOS[5]))  # changed: another photo under the same name
    summary = make_dataset(tiny_cfg("source=folder", f"source.root={root}", *CHEAP))
    assert sorted(count_reads) == sorted(str(root / name) for name in PHOTOS[:2])
    assert (summary.already_done, summary.generated) == (2, 1)
    rows = {row["id"]: row for row in manifest_rows(summary.dataset_dir)}
    assert rows[Path(PHOTOS[1]).stem]["source_sha256"] == hashlib.sha256(bundled(PHOTOS[5])).hexdigest()


def test_a_name_that_is_not_utf8_is_valid_utf8_in_the_manifest_and_hashed_once(tiny_cfg, tmp_path, count_reads):
    root = tmp_path / "photos"
    root.mkdir()
    (root / os.fsdecode(b"caf\xe9.jpg")).write_bytes(bundled("rocket.jpg"))
    out = make_dataset(tiny_cfg("source=folder", f"source.root={root}", *CHEAP)).dataset_dir
    (manifest,) = out.glob("manifest*.jsonl")
    (row,) = pyarrow.json.read_json(manifest).to_pylist()
    assert (row["id"], row["source"]) == ("caf_", "caf\\xe9.jpg")
    count_reads.clear()
    assert make_dataset(tiny_cfg("source=folder", f"source.root={root}", *CHEAP)).already_done == 1
    assert count_reads == []


def test_a_changed_shard_is_hashed_again(tmp_path, tiny_cfg, count_reads):
    shard = tmp_path / "0.tar"
    write_shard(shard, img2dataset_members(list(PHOTOS[:2])))
    make_dataset(tiny_cfg("source=webdataset", f"source.urls={shard}", *CHEAP))
    count_reads.clear()
    write_shard(shard, img2dataset_members(list(PHOTOS[:3])))
    summary = make_dataset(tiny_cfg("source=webdataset", f"source.urls={shard}", *CHEAP))
    assert len(count_reads) == 3 and (summary.already_done, summary.generated) == (2, 1)


def test_a_corrupt_cache_is_ignored_with_a_note(collection, tiny_cfg, tmp_path, count_reads, capsys):
    out = make_dataset(tiny_cfg(*collection["folder"], *CHEAP)).dataset_dir
    (cache,) = cache_files(out)
    cache.write_text('{"version": 1, "hashes": {"trunc')
    count_reads.clear()
    assert make_dataset(tiny_cfg(*collection["folder"], *CHEAP)).already_done == len(PHOTOS)
    assert f"note: ignoring the source hash cache {cache}" in capsys.readouterr().out
    assert len(count_reads) == len(PHOTOS)
    assert len(json.loads(cache.read_text())["hashes"]) == len(PHOTOS)  # written again, whole


def test_a_shard_packed_with_dot_slash_names_gives_plain_ids(tmp_path):
    """`tar -C dir -cf shard.tar .` stores ./000.jpg: the id is 000, not a hidden name nor `_` for the dot."""
    write_shard(tmp_path / "a.tar", [("./000.png", bundled("camera.png")), ("./sub/001.png", bundled("coffee.png"))])
    items = WebDatasetSource(str(tmp_path / "a.tar")).items()
    assert [item.id for item in items] == ["000", "sub_001"]
