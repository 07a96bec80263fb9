"""`sd_tiny`: the SD image-variation pipeline with tiny RANDOM weights, for smoke tests and the offline demo.

The components are built from configs with a fixed init seed, saved once to a local cache, and then loaded
through exactly the same `from_pretrained` code as the real model. Its images are noise-like, not photos.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    PNDMScheduler,
    StableDiffusionImageVariationPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from aigen.generators.sd import SDImageVariation

TINY_MODEL_ID = "aigen/sd-tiny-random"
TINY_VERSION = "v1"
INIT_SEED = 0
CLIP_IMAGE_SIZE = 32


def build_tiny_pipeline() -> StableDiffusionImageVariationPipeline:
    """Tiny components shaped like SD's: the VAE has four blocks so that it downsamples 8x, as SD's does."""
    torch.manual_seed(INIT_SEED)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=2,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    )
    torch.manual_seed(INIT_SEED)
    vae = AutoencoderKL(
        block_out_channels=[32, 32, 64, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
    )
    torch.manual_seed(INIT_SEED)
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            projection_dim=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            image_size=CLIP_IMAGE_SIZE,
            patch_size=4,
        )
    )
    return assemble_pipeline(unet, vae, image_encoder, CLIP_IMAGE_SIZE)


def assemble_pipeline(
    unet: UNet2DConditionModel, vae: AutoencoderKL, image_encoder: CLIPVisionModelWithProjection, clip_size: int
) -> StableDiffusionImageVariationPipeline:
    """The image-variation pipeline around given networks, with SD v1's scheduler (so any model built here walks
    the real model's timesteps), a CLIP processor for `clip_size`, and no safety checker."""
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionImageVariationPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=CLIPImageProcessor(size=clip_size, crop_size=clip_size),
        requires_safety_checker=False,
    )


def ensure_tiny_model(cache_dir: Path) -> Path:
    """The saved tiny pipeline, built on first use; concurrent first uses each build, one rename wins."""
    target = cache_dir / f"sd-tiny-random-{TINY_VERSION}"
    if (target / "model_index.json").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sd-tiny-", dir=cache_dir))
    try:
        build_tiny_pipeline().save_pretrained(staging)
        os.rename(staging, target)
    except OSError:
        if not (target / "model_index.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class TinySDImageVariation(SDImageVariation):
    """The `sd` generator on the tiny random-weight pipeline from the local cache."""

    def __init__(self, cache_dir: str, **settings) -> None:
        super().__init__(model=TINY_MODEL_ID, revision=TINY_VERSION, weights="random", **settings)
        self.cache_dir = Path(os.path.expanduser(cache_dir))

    def pretrained_location(self) -> str:
        return str(ensure_tiny_model(self.cache_dir))
