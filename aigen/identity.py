"""What a dataset is: the settings that decide its bytes (fingerprinted in dataset.json) and the default dir
named after them, so that two configs that make different pixels never share a dataset dir."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from aigen.dataset.layout import read_record
from aigen.dataset.record import (
    differences,
    fingerprint,
    made_by_run,
    only_identity_differs,
    readable_content,
    same_config,
    versioned_dir,
)
from aigen.generators.base import Generator
from aigen.sources import Source


def settings_of(node: DictConfig) -> dict:
    """A config node's settings, without Hydra's own keys (`_target_`): what the fingerprint compares."""
    return {key: value for key, value in OmegaConf.to_container(node, resolve=True).items() if not key.startswith("_")}


def content_config(cfg: DictConfig, source: Source, generator: Generator) -> dict:
    """Everything that decides the bytes of a pair: which photos and how they are read (the source's identity and
    reading), the output size, JPEG settings and pair processing, the generator's settings, and `seed` only where it
    seeds the generator."""
    photos = {"name": source.name, "identity": source.identity}
    content = {
        "source": photos | ({"reading": source.reading} if source.reading else {}),
        "size": cfg.size,
        "jpeg": settings_of(cfg.jpeg),
        "pairing": pairing_settings(cfg),
        **generator.describe(),
    }
    if generator.seeded or content["pairing"].get("mixup"):  # mixup's r is drawn from each image's seed
        content["seed"] = cfg.seed
    return content


def pairing_settings(cfg: DictConfig) -> dict:
    """The pairing settings, without `mixup` when it is off: datasets made before it existed keep their fingerprint."""
    pairing = settings_of(cfg.pairing)
    if not pairing.get("mixup"):
        pairing.pop("mixup", None)
    return pairing


def dataset_dir(cfg: DictConfig, source: Source, generator: Generator) -> Path:
    """`dataset_dir`, or by default `<data_dir>/processed/<source>-<generator>-<size>-<generator tags>[-s<seed>]`
    (e.g. `indoor-sd-256-g3.0-s0`, `indoor-dalle2-256-dall-e-2-512x512`): `versioned` when that name is taken."""
    if cfg.get("dataset_dir"):
        return Path(to_absolute_path(str(cfg.dataset_dir)))
    parts = [source.name, generator.name, str(cfg.size), *generator.dir_tags(), *generator.native_tags()]
    mixup = cfg.pairing.get("mixup")
    if mixup:
        parts.append(f"mix{mixup}")
    if generator.seeded or mixup:
        parts.append(f"s{cfg.seed}")
    name = "-".join(part.replace("/", "_") for part in parts)
    named = Path(to_absolute_path(str(cfg.data_dir))) / "processed" / name
    return versioned(named, content_config(cfg, source, generator))


def versioned(named: Path, content: dict) -> Path:
    """`named`, unless it holds another config's dataset: then `<named>-<this config's fingerprint, 8 hex digits>`.

    The name carries only the main settings, so a sweep over another fingerprinted one (steps, scheduler,
    `pairing.geometry`) meets the first value's dir; each config gets its own instead. Once made, the fingerprinted
    dir is this config's for good (found first, whatever `named` holds later). Not when only the source's identity
    differs: that is most often the same photos at another path (a shard on another node, a moved copy), where a
    new dataset would make (and pay for) every pair again; `check_record` refuses it, naming `source.identity`.
    A folder there that aigen did not make is refused too."""
    beside = versioned_dir(named, fingerprint(content))
    if beside.is_dir():
        other = readable_content(named)
        changes = differences(other, content) if other is not None else []  # the plain dir may be gone
        if changes:
            said = "; ".join(changes)
            print(f"{beside.name}: this config's dataset dir, versioned beside {named.name}, another config ({said})")
        return beside
    existing = read_record(named) if named.is_dir() else None
    if existing is None or not made_by_run(existing):
        return named
    if same_config(existing, content):
        return named
    changes = differences(existing["content"], content)
    if not changes or only_identity_differs(changes):  # check_record refuses, saying which
        return named
    print(f"{named.name} holds another config's dataset ({'; '.join(changes)}): this one goes to {beside.name}")
    return beside
