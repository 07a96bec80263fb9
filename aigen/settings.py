"""The run's own settings, checked before any work: a bad value is one line naming the key, never a traceback."""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from aigen.checks import multiple_of_8, number, whole_number
from aigen.dataset import Shard
from aigen.errors import UserError


def launcher_shard() -> Shard | None:
    """The shard of a process started by torchrun or `accelerate launch` (RANK of WORLD_SIZE), else None."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    rank = int(os.environ.get("RANK", "0"))
    if not 0 <= rank < world:
        raise UserError(f"RANK={rank} is not in [0, WORLD_SIZE={world}): check the launcher's environment")
    return Shard(rank, world)


DEFAULT_GUIDANCE = 3.0  # conf/config.yaml's `guidance_scale`: the original dataset_factory's


def check_guidance(cfg: DictConfig) -> None:
    """The top-level `guidance_scale` is the guidance of the generators that read it (`sd`: `${guidance_scale}`);
    set for one that does not, it would change nothing, and a sweep over it would make the same dataset again."""
    guidance = cfg.guidance_scale
    cfg.guidance_scale = number("guidance_scale", guidance)  # `guidance_scale=3` and 3.0 name the same dataset dir
    generator = cfg.generator
    read = "guidance_scale" in generator and OmegaConf.is_interpolation(generator, "guidance_scale")
    if cfg.guidance_scale != DEFAULT_GUIDANCE and not read:
        name = generator.get("name")
        if "guidance_scale" not in generator:
            raise UserError(f"guidance_scale={guidance} is not read by generator={name}, which has no guidance")
        raise UserError(
            f"guidance_scale={guidance} is not read by generator={name}: its guidance is "
            f"generator.guidance_scale={generator.guidance_scale}; set that one"
        )


def check_settings(cfg: DictConfig) -> Shard:
    """Check (and normalise) the top-level keys of the factory's config; returns this run's shard."""
    check_guidance(cfg)
    multiple_of_8("size", cfg.size, " (e.g. 256)")
    for key, low in (
        ("limit", 0),
        ("seed", 0),
        ("sample_seed", 0),
        ("workers", 1),
        ("gallery_size", 0),
        ("max_consecutive_failures", 0),
    ):
        whole_number(key, cfg[key], low)
    ratio = cfg.max_failure_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise UserError(f"max_failure_ratio={ratio!r} must be a number between 0 and 1")
    if cfg.batch_size != "auto":
        whole_number("batch_size", cfg.batch_size, 1)
    index = whole_number("shard.index", cfg.shard.index, 0)
    count = whole_number("shard.count", cfg.shard.count, 1)
    world = launcher_shard()
    if world and count > 1:
        raise UserError(
            f"shard.count={count} and torchrun/accelerate (WORLD_SIZE={world.count}) both shard the photos: "
            "use one of them"
        )
    if world:
        return world
    try:
        return Shard(index, count)
    except ValueError as error:
        raise UserError(str(error)) from None
