"""Generation overhead on CPU: the whole factory with `sd_tiny` vs a bare diffusers loop doing the same work.

Both use the same saved tiny pipeline, batch size, steps and output size. The bare loop holds the model card's
input tensors in memory (made before the clock starts) and only calls the pipeline; the factory also decodes,
crops, preprocesses, post-processes, encodes and writes every pair and its manifest row. Their images/s ratio is
what the factory's work around the pipeline costs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from aigen.factory import make_dataset
from aigen.generators.sd import SDImageVariation
from aigen.preprocess import ImageLoader
from aigen.seeding import per_image_seed
from aigen.tables import markdown_table
from benchmarks.common import ROOT, make_corpus, report


def factory_images_per_second(corpus: Path, out: Path, overrides: list[str]) -> float:
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("config", overrides=[f"source.root={corpus}", f"dataset_dir={out}", *overrides])
    summary = make_dataset(cfg)
    assert summary.failed == 0
    return summary.images_per_second


def bare_images_per_second(paths: list[Path], batch: int, steps: int, gen_size: int) -> float:
    generator = SDImageVariation(
        "aigen/sd-tiny-random", "v1", steps, 3.0, gen_size, tiny="sd", cache_dir=os.environ["AIGEN_CACHE"]
    )
    generator.load()
    pipe = generator._pipe  # the very pipeline the factory runs
    loader = ImageLoader(draft=False, min_side=64, max_aspect=3.0)
    inputs = generator.clip_input([generator.prepare(loader(path).condition_square()) for path in paths])
    started = time.perf_counter()
    for start in range(0, len(paths), batch):
        images = inputs[start : start + batch]
        generators = [torch.Generator().manual_seed(per_image_seed(0, str(start + i))) for i in range(len(images))]
        output = pipe(images, height=gen_size, width=gen_size, num_inference_steps=steps, generator=generators)
        assert all(isinstance(image, Image.Image) for image in output.images)
    return len(paths) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--gen-size", type=int, default=512)
    parser.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("AIGEN_CACHE", str(Path(tmp) / "cache"))
        paths = make_corpus(Path(tmp) / "corpus", args.photos)
        overrides = [
            "source=folder",
            "generator=sd_tiny",
            "logger=none",
            "size=64",
            f"batch_size={args.batch}",
            f"generator.steps={args.steps}",
            f"generator.gen_size={args.gen_size}",
        ]
        factory, bare = [], []
        for repeat in range(args.repeats):  # interleaved, so both see the same machine load
            factory.append(factory_images_per_second(paths[0].parent, Path(tmp) / f"out{repeat}", overrides))
            bare.append(bare_images_per_second(paths, args.batch, args.steps, args.gen_size))
    rows = [
        ["bare diffusers loop", f"{max(bare):.2f}", "1.00"],
        [
            "factory (decode, generate, post-process, write, manifest)",
            f"{max(factory):.2f}",
            f"{max(factory) / max(bare):.3f}",
        ],
    ]
    report(
        f"Generation overhead on CPU: sd_tiny, {args.photos} photos, batch {args.batch}, {args.steps} steps, "
        f"{args.gen_size} px",
        markdown_table(["loop", "images/s (best of runs)", "ratio to bare"], rows),
        [
            f"best of {args.repeats} interleaved runs each; model loading excluded from both.",
            "goal: ratio >= 0.95 (the factory's decoding runs on worker threads while the pipeline runs).",
        ],
        args.append,
    )


if __name__ == "__main__":
    main()
