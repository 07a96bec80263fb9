"""Size-capped shards of export rows: Parquet (one row per pair, images as Hugging Face Image structs) or
WebDataset tars (<key>.original.jpg, <key>.ai.jpg, <key>.json). Image bytes are copied, never re-encoded."""

from __future__ import annotations

import importlib.util
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

from aigen.dataset import HALVES
from aigen.errors import UserError
from aigen.export.collect import Pair, PairRef

FORMATS = ("parquet", "webdataset")
EXTENSIONS = {"parquet": "parquet", "webdataset": "tar"}
DATA_DIR = "data"
ROW_GROUP_ROWS = 100  # pairs per Parquet row group: small enough for the Hub's viewer to page through images


def plan_shards(pairs: list[Pair], max_bytes: int) -> list[list[Pair]]:
    """Consecutive pairs grouped so that each shard's image bytes stay under `max_bytes` (a pair larger than the
    cap gets a shard of its own). Planned from file sizes first, so shard names can say how many there are."""
    shards: list[list[Pair]] = []
    size = 0
    for pair in pairs:
        pair_size = pair.size_bytes()
        if not shards or size + pair_size > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(pair)
        size += pair_size
    return shards


def shard_name(split: str, index: int, count: int, file_format: str) -> str:
    """`train-00000-of-00003.parquet` (the Hub's own naming) or `train-00000.tar` (WebDataset's brace patterns)."""
    if file_format == "parquet":
        return f"{split}-{index:05d}-of-{count:05d}.parquet"
    return f"{split}-{index:05d}.tar"


def split_pattern(split: str, file_format: str) -> str:
    """The data_files pattern of one split in the dataset card, relative to the export root."""
    return f"{DATA_DIR}/{split}-*.{EXTENSIONS[file_format]}"


def hf_feature(dtype: str) -> dict:
    """A Features.to_dict() entry: how `datasets` reads a Parquet column back."""
    return {"_type": "Image"} if dtype == "image" else {"dtype": dtype, "_type": "Value"}


def parquet_features(columns: dict[str, str]) -> dict[str, str]:
    """Every Parquet column's dtype, the two image columns right after `id`."""
    names = list(columns)
    return {names[0]: columns[names[0]], **dict.fromkeys(HALVES, "image"), **{n: columns[n] for n in names[1:]}}


def parquet_schema(columns: dict[str, str]):
    """The Arrow schema, with the `huggingface` metadata that makes `datasets` decode the image columns."""
    import pyarrow as pa

    arrow = {"bool": pa.bool_(), "int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    features = parquet_features(columns)
    fields = [(name, image if dtype == "image" else arrow[dtype]) for name, dtype in features.items()]
    info = {"info": {"features": {name: hf_feature(dtype) for name, dtype in features.items()}}}
    return pa.schema(fields, metadata={"huggingface": json.dumps(info)})


def parquet_record(pair: Pair, columns: dict[str, str]) -> dict:
    images = {half: {"bytes": pair.image_bytes(half), "path": pair.row[half]} for half in HALVES}
    return {**pair.metadata(columns), **images}


def batches(pairs: list[Pair], size: int) -> Iterator[list[Pair]]:
    for start in range(0, len(pairs), size):
        yield pairs[start : start + size]


def check_format_available(file_format: str) -> None:
    """Parquet needs pyarrow, which only the `export` extra installs: say so before any work."""
    if file_format == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise UserError("--format parquet needs pyarrow: pip install 'aigen[export]'")


def write_parquet_shard(path: Path, pairs: list[Pair], columns: dict[str, str]) -> None:
    """One Parquet file, ROW_GROUP_ROWS pairs at a time (only one row group's images in memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(columns)
    with pq.ParquetWriter(path, schema) as writer:
        for batch in batches(pairs, ROW_GROUP_ROWS):
            writer.write_table(pa.Table.from_pylist([parquet_record(pair, columns) for pair in batch], schema=schema))


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """A regular file with fixed owner and time, so the same export gives the same tar bytes."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def write_webdataset_shard(path: Path, pairs: list[Pair], columns: dict[str, str], keys: dict[PairRef, str]) -> None:
    """One tar: each pair's three files next to each other under its sample key."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for pair in pairs:
            key = keys[pair.ref]
            for half in HALVES:
                add_member(tar, f"{key}.{half}.jpg", pair.image_bytes(half))
            add_member(tar, f"{key}.json", json.dumps(pair.sample_json(columns), sort_keys=True).encode())


def sample_keys(pairs: list[Pair], several_dirs: bool) -> dict[PairRef, str]:
    """Each pair's WebDataset key: its id, prefixed with `<dataset>/` when the export holds several dataset dirs
    (their ids repeat). WebDataset ends a key at the first dot of a file name, so dots in ids become `_`."""
    keys: dict[PairRef, str] = {}
    owners: dict[str, str] = {}
    for pair in pairs:
        key = pair.row["id"].replace(".", "_")
        if several_dirs:
            key = f"{pair.dataset.name}/{key}"
        if key in owners:
            raise UserError(
                f"ids {owners[key]!r} and {pair.row['id']!r} both make the WebDataset key {key!r}; use --format "
                "parquet for this dataset"
            )
        owners[key] = pair.row["id"]
        keys[pair.ref] = key
    return keys


def write_shards(
    pairs: list[Pair], columns: dict[str, str], root: Path, file_format: str, max_bytes: int, several_dirs: bool
) -> dict[str, list[str]]:
    """Every split's shards under root/data; returns the files of each non-empty split, relative to `root`."""
    (root / DATA_DIR).mkdir(parents=True)
    keys = sample_keys(pairs, several_dirs) if file_format == "webdataset" else {}
    files: dict[str, list[str]] = {}
    for split in dict.fromkeys(pair.split for pair in pairs):
        shards = plan_shards([pair for pair in pairs if pair.split == split], max_bytes)
        for index, shard in enumerate(shards):
            name = f"{DATA_DIR}/{shard_name(split, index, len(shards), file_format)}"
            if file_format == "parquet":
                write_parquet_shard(root / name, shard, columns)
            else:
                write_webdataset_shard(root / name, shard, columns, keys)
            files.setdefault(split, []).append(name)
    return files
