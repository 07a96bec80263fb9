"""The pair browser's data, for any number of pairs: every pair once, in chunk files of `page_size` pairs that the
page loads on demand as <script> files (a page opened from disk may not fetch() local files), and an index of
segments (dataset, generator, alignment, first pair, count) small enough to embed, from which the page computes
any filter's pages. Images are referred to by relative path, or copied into the site."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from itertools import groupby
from pathlib import Path
from urllib.parse import quote

from aigen.dataset import HALVES, DatasetDir
from aigen.errors import unreadable_as_user_error
from aigen.report.collect import DatasetFacts

CHUNK_DIR = "pairs"
IMAGE_DIR = "images"


@dataclass(frozen=True)
class Segment:
    """Consecutive pairs of one dataset dir with one generator and alignment (a filter keeps or drops it whole)."""

    dataset: int
    generator: str | None
    alignment: str | None
    start: int
    count: int


def ordered_pairs(datasets: list[DatasetDir]) -> list[tuple[int, dict]]:
    """(dataset index, manifest row) of every pair: by dataset, generator, alignment, then id."""

    def order(item: tuple[int, dict]) -> tuple:
        index, row = item
        return (index, str(row.get("generator")), str(row.get("alignment")), row["id"])

    return sorted(((index, row) for index, d in enumerate(datasets) for row in d.rows.values()), key=order)


def segments(pairs: list[tuple[int, dict]]) -> list[Segment]:
    found, start = [], 0
    for (index, generator, alignment), group in groupby(
        pairs, key=lambda item: (item[0], item[1].get("generator"), item[1].get("alignment"))
    ):
        count = sum(1 for _ in group)
        found.append(Segment(index, generator, alignment, start, count))
        start += count
    return found


def pair_entry(row: dict) -> list:
    """What the browser shows of one pair: id, both halves' URL-quoted paths in their dataset dir, source, seed.
    The seed is text: a 64-bit seed is beyond JavaScript's exact integers."""
    seed = row.get("seed")
    return [
        row["id"],
        *(quote(row[half]) for half in HALVES),
        row.get("source"),
        None if seed is None else str(seed),
    ]


def chunk_name(number: int) -> str:
    return f"{CHUNK_DIR}/{number:05d}.js"


def write_chunks(pairs: list[tuple[int, dict]], page_size: int, site: Path) -> int:
    """pairs/NNNNN.js, each `aigenChunk(N, [...])` with `page_size` pairs; the number of chunks."""
    (site / CHUNK_DIR).mkdir()
    count = 0
    for count, start in enumerate(range(0, len(pairs), page_size), start=1):
        entries = [pair_entry(row) for _, row in pairs[start : start + page_size]]
        script = f"aigenChunk({count - 1},{json.dumps(entries, separators=(',', ':'))});\n"
        (site / chunk_name(count - 1)).write_text(script, encoding="utf-8")
    return count


def image_base(dataset: DatasetDir, site: Path, copy: bool) -> str:
    """The URL of a dataset dir's folder as seen from the site's index.html: relative to the site's path as given,
    not resolved, since a browser resolves `..` in the URL as text (a site reached through a symlink)."""
    if copy:
        return f"{IMAGE_DIR}/{quote(dataset.name)}"
    return quote(Path(os.path.relpath(dataset.path, os.path.abspath(site))).as_posix())


def copy_images(datasets: list[DatasetDir], site: Path) -> None:
    """Both halves of every pair into images/<dataset name>/, under their paths in the dataset dir (--copy)."""
    for dataset in datasets:
        for row in dataset.rows.values():
            for half in HALVES:
                source, target = dataset.path / row[half], site / IMAGE_DIR / dataset.name / row[half]
                target.parent.mkdir(parents=True, exist_ok=True)
                with unreadable_as_user_error(source):
                    shutil.copyfile(source, target)


def write_pair_data(facts: list[DatasetFacts], page_size: int, site: Path, real_site: Path, copy: bool) -> dict:
    """Write the chunks (and with `copy` the images) into `site`; the index the page embeds. `real_site` is where
    the site will finally be, which relative image paths start from."""
    datasets = [fact.dataset for fact in facts]
    pairs = ordered_pairs(datasets)
    chunks = write_chunks(pairs, page_size, site)
    if copy:
        copy_images(datasets, site)
    return {
        "pageSize": page_size,
        "chunks": chunks,
        "pairs": len(pairs),
        "datasets": [{"name": d.name, "base": image_base(d, real_site, copy)} for d in datasets],
        "segments": [asdict(segment) for segment in segments(pairs)],
    }
