"""Shared by the benchmarks: a photo corpus shaped like MIT Indoor67, machine facts, the BENCHMARKS.md table."""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from pathlib import Path

import skimage.data
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "retina.jpg")


def make_corpus(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """`count` JPEGs of 256 to 1600 px a side with indoor-photo aspect ratios, cut from scikit-image's photos."""
    rng = random.Random(seed)
    data = Path(skimage.data.__file__).parent
    sources = [Image.open(data / name).convert("RGB") for name in PHOTOS]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        long_side = rng.randint(256, 1600)
        aspect = rng.uniform(1.0, 1.6)
        short_side = max(256, int(long_side / aspect))
        size = (long_side, short_side) if rng.random() < 0.7 else (short_side, long_side)
        image = sources[index % len(sources)].resize(size, Image.Resampling.BICUBIC)
        path = folder / f"photo_{index:04d}.jpg"
        image.save(path, format="JPEG", quality=rng.randint(75, 95))
        paths.append(path)
    return paths


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}){gpu}, Python {platform.python_version()}, torch {torch.__version__}"


def report(title: str, table: str, notes: list[str], append: bool) -> None:
    """Print the table; with `append`, add it to BENCHMARKS.md with the command, machine and date."""
    script = Path(sys.argv[0])
    runner = "python benchmarks/run.py" if script.stem == "run" else f"python -m benchmarks.{script.stem}"
    command = " ".join([runner, *sys.argv[1:]])
    text = "\n".join(
        [
            f"### {title}",
            "",
            f"{time.strftime('%Y-%m-%d %H:%M %Z')} — `{command}` — {machine()}",
            "",
            table,
            "",
            *[f"- {note}" for note in notes],
            "",
        ]
    )
    print(text)
    if append:
        with open(BENCHMARKS_MD, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


def best_of(repeats: int, run) -> float:
    """The shortest of `repeats` wall-clock timings of `run()`: the least disturbed by other load."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return min(timings)
