"""What the generator zoo's tests share (test_zoo, test_modern, test_flux): a config on the sample photos, a photo
square, and what every tiny twin must show end to end: rows that record its settings, a resume that makes nothing,
the same bytes for the same config, another seed changing only AI halves."""

from __future__ import annotations

from pathlib import Path

import skimage.data
from omegaconf import DictConfig, open_dict
from PIL import Image

from aigen.factory import make_dataset
from aigen.seeding import per_image_seed
from conftest import compose_config, file_bytes, manifest_rows

# Every twin's rows carry these besides its own settings.
COMMON = ("id", "source", "source_sha256", "generator", "model", "revision", "weights", "gen_size", "size", "alignment")


def samples_cfg(generator: str, out: Path, *overrides: str) -> DictConfig:
    """`generator` on the bundled sample photos at 64 px, into `out`."""
    cfg = compose_config("source=samples", f"generator={generator}", "size=64", "logger=none", *overrides)
    with open_dict(cfg):
        cfg.dataset_dir = str(out)
    return cfg


def photo_square(side: int = 96) -> Image.Image:
    return Image.fromarray(skimage.data.astronaut()).resize((side, side))


def assert_twin_end_to_end(twin: str, folder: Path, limit: int, settings: dict, scheduler: str | None) -> Path:
    """`limit` pairs at 64 px whose rows hold `settings` and the scheduler class that ran (None: it has none);
    returns the first dataset dir."""
    first = make_dataset(samples_cfg(twin, folder / "a", f"limit={limit}"))
    assert (first.generated, first.failed) == (limit, 0)
    rows = manifest_rows(first.dataset_dir)
    assert len(rows) == limit
    for row in rows:
        assert all(key in row for key in COMMON), row
        assert {key: row[key] for key in settings} == settings
        assert row["weights"] == "random" and row["generator"] == twin and row["seed"] == per_image_seed(0, row["id"])
        assert row.get("scheduler") == scheduler
        for half in ("original", "ai"):
            with Image.open(first.dataset_dir / row[half]) as image:
                assert image.size == (64, 64) and image.mode == "RGB"

    again = make_dataset(samples_cfg(twin, folder / "a", f"limit={limit}"))
    assert (again.generated, again.already_done) == (0, limit)

    twice = make_dataset(samples_cfg(twin, folder / "b", f"limit={limit}")).dataset_dir
    assert file_bytes(twice) == file_bytes(first.dataset_dir)

    other_seed = file_bytes(make_dataset(samples_cfg(twin, folder / "c", f"limit={limit}", "seed=1")).dataset_dir)
    for name, data in file_bytes(first.dataset_dir).items():
        assert (other_seed[name] == data) == name.startswith("original/"), name
    return first.dataset_dir
