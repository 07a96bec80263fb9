"""Startup of a resume with nothing to do: every photo already paired, with and without the source hash cache.

A start walks the source, hashes each selected photo's bytes for `source_sha256`, and compares with the pairs on
disk. Cold: no hash cache in the dataset dir (every start before the cache; the first start after it). Warm: the
cache a previous start wrote; only the files' size and mtime are read.

The finished dataset is made for real on one photo (dataset.json, a pair, its manifest row), then given a pair
(hard links to that one) and a manifest row for every other photo, with each photo's real sha256: the start that
is timed is the factory's own, from `make_dataset`, with nothing left to generate.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import skimage.data
from hydra import compose, initialize_config_dir
from PIL import Image

from aigen import factory
from aigen.factory import plan
from aigen.hash_cache import cache_files
from aigen.sources import FolderSource, SourceItem, with_hashes
from aigen.tables import markdown_table
from benchmarks.common import ROOT, report

PER_FOLDER = 1000  # photos per sub-folder, as a large collection is usually laid out
LINKS_PER_FILE = 50_000  # below ext4's 65,000 hard links per file


def base_jpeg(kilobytes: int) -> bytes:
    """A real JPEG of about `kilobytes`: each photo is this plus its own trailing bytes (distinct hashes)."""
    photo = Image.open(Path(skimage.data.__file__).parent / "astronaut.png").convert("RGB")
    side = 64
    while True:
        buffer = io.BytesIO()
        photo.resize((side, side)).save(buffer, format="JPEG", quality=90)
        if buffer.tell() >= kilobytes * 1024 or side >= 2048:
            return buffer.getvalue()
        side += 32


def make_folder(root: Path, count: int, kilobytes: int) -> dict[str, str]:
    """`count` distinct JPEGs under `root`; their sha256 by relative path."""
    base = base_jpeg(kilobytes)
    digests = {}
    for index in range(count):
        relative = f"{index // PER_FOLDER:04d}/photo_{index:07d}.jpg"
        data = base + index.to_bytes(8, "big")  # after the JPEG's end marker: ignored by decoders
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests[relative] = hashlib.sha256(data).hexdigest()
    return digests


def config(root: Path, out: Path, limit: int = 0):
    overrides = [
        "source=folder",
        f"source.root={root}",
        "source.identity=startup-benchmark",
        "generator=identity",
        "size=64",
        "logger=none",
        f"limit={limit}",
        f"dataset_dir={out}",
    ]
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        return compose("config", overrides=overrides)


def finish_dataset(root: Path, out: Path, digests: dict[str, str]) -> None:
    """One pair made for real; every other photo given the same pair files and its own manifest row."""
    factory.make_dataset(config(root, out, limit=1))
    template = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    linked = {half: out / template[half] for half in ("original", "ai")}
    with open(out / "manifest.jsonl", "a", encoding="utf-8") as manifest:
        for index, (relative, digest) in enumerate(digests.items()):
            image_id = relative.removesuffix(".jpg").replace("/", "_")
            if image_id == template["id"]:
                continue
            for half in ("original", "ai"):
                target = out / half / f"{image_id}.jpg"
                if index % LINKS_PER_FILE == 0:  # a new copy: a file takes only so many hard links
                    shutil.copyfile(out / template[half], target)
                    linked[half] = target
                else:
                    os.link(linked[half], target)
            row = template | {
                "id": image_id,
                "source": relative,
                "source_sha256": digest,
                "original": f"original/{image_id}.jpg",
                "ai": f"ai/{image_id}.jpg",
            }
            manifest.write(json.dumps(row, sort_keys=True) + "\n")


def timed_start(root: Path, out: Path, reads: list[int]) -> tuple[float, float]:
    """Seconds of the whole start, and of its hashing step."""
    cfg = config(root, out)
    reads.clear()
    hashing: list[float] = []

    def timed_with_hashes(*args, **kwargs):
        started = time.perf_counter()
        hashed = with_hashes(*args, **kwargs)
        hashing.append(time.perf_counter() - started)
        return hashed

    plan.with_hashes = timed_with_hashes  # where the start calls it
    try:
        started = time.perf_counter()
        summary = factory.make_dataset(cfg)
        seconds = time.perf_counter() - started
    finally:
        plan.with_hashes = with_hashes
    assert summary.generated == 0 and summary.already_done == summary.selected, summary
    return seconds, sum(hashing)


def measure(count: int, kilobytes: int, workdir: Path, reads: list[int]) -> list[str]:
    root, out = workdir / "photos", workdir / "dataset"
    digests = make_folder(root, count, kilobytes)
    gigabytes = sum(path.stat().st_size for path in root.rglob("*.jpg")) / 1e9
    finish_dataset(root, out, digests)
    started = time.perf_counter()
    FolderSource(str(root)).items()
    walk = time.perf_counter() - started
    for cache in cache_files(out):
        cache.unlink()
    cold, cold_hashing = timed_start(root, out, reads)
    cold_reads = len(reads)
    warm, warm_hashing = timed_start(root, out, reads)
    return [
        f"{count:,}",
        f"{gigabytes * 1000:,.0f} MB",
        f"{walk:.2f}",
        f"{cold_hashing:.2f} ({cold_reads:,} read)",
        f"{warm_hashing:.2f} ({len(reads):,} read)",
        f"{cold_hashing / warm_hashing:.0f}x",
        f"{cold:.2f}",
        f"{warm:.2f}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[20_000], help="photos in the collection")
    parser.add_argument("--kilobytes", type=int, default=8, help="size of each JPEG")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("WANDB_MODE", "disabled")

    reads: list[int] = []  # one entry per photo whose bytes are read to be hashed
    sha256_of_bytes = SourceItem.sha256_of_bytes

    def counted(item: SourceItem) -> str:
        reads.append(1)
        return sha256_of_bytes(item)

    SourceItem.sha256_of_bytes = counted
    rows = []
    for count in args.counts:
        workdir = Path(tempfile.mkdtemp(prefix="aigen-startup-"))
        try:
            rows.append(measure(count, args.kilobytes, workdir, reads))
        finally:
            shutil.rmtree(workdir)
    table = markdown_table(
        [
            "photos",
            "on disk",
            "walk (s)",
            "hashing, cold (s)",
            "hashing, warm (s)",
            "cold / warm",
            "whole start, cold (s)",
            "whole start, warm (s)",
        ],
        rows,
    )
    report(
        "Startup of a resume with nothing to do (source hash cache)",
        table,
        [
            f"folder source of {args.kilobytes} KB JPEGs in folders of {PER_FOLDER}, every pair already on disk; "
            "`make_dataset` from the composed config to its summary (generator=identity: nothing to load).",
            "cold: no source_hashes*.json, every photo is read and hashed (as every start did before the cache); "
            "warm: the cache the cold start wrote, only size and mtime are read. The OS page cache is warm in both "
            "(the photos were just written), so reading costs less than from a cold disk or a network filesystem.",
            "walk: FolderSource.items() alone, the directory walk every start does; hashing: the start's "
            "`with_hashes` step (stat + cache lookup, or read + sha256); whole start: `make_dataset` to its summary, "
            "which also checks every pair on disk and compacts the records (aigen/dataset/writer.py).",
        ],
        args.append,
    )


if __name__ == "__main__":
    main()
