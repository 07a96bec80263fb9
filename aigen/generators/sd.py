"""Stable Diffusion image variations conditioned on a CLIP image embedding (lambdalabs/sd-image-variations)."""

from __future__ import annotations

import logging

import diffusers
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from diffusers import StableDiffusionImageVariationPipeline
from PIL import Image

from aigen.devices import resolve_device
from aigen.errors import SkipImage, UserError
from aigen.generators.base import Variation

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """fp16 on CUDA (the model's published precision), fp32 elsewhere (CPU half precision is slow)."""
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise UserError(f"generator.dtype={dtype!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


class SDImageVariation:
    """`StableDiffusionImageVariationPipeline` loaded with `from_pretrained` (hub id + revision, or a local path).

    The safety checker is off: it replaces flagged images with black squares, which would poison a dataset.
    """

    def __init__(
        self,
        model: str,
        revision: str | None,
        steps: int,
        guidance_scale: float,
        gen_size: int,
        device: str = "auto",
        dtype: str = "auto",
        name: str = "sd",
        weights: str = "pretrained",
        input_side: int | None = None,
        compile: bool = False,
    ) -> None:
        if gen_size <= 0 or gen_size % 8:
            raise UserError(f"generator.gen_size={gen_size} must be a positive multiple of 8")
        self.name = name
        self.model = model
        self.revision = revision
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.gen_size = gen_size
        self.device = device
        self.dtype = dtype
        self.weights = weights
        self.input_side = input_side
        self.compile = compile
        self._pipe: StableDiffusionImageVariationPipeline | None = None

    def describe(self) -> dict:
        return {
            "generator": self.name,
            "model": self.model,
            "revision": self.revision,
            "weights": self.weights,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "gen_size": self.gen_size,
        }

    def plan(self, count: int) -> str:
        device = resolve_device(self.device)
        return (
            f"{self.name}: {count} images with {self.model} ({self.weights} weights), {self.steps} steps, on {device}"
        )

    def default_batch_size(self) -> int:
        """16 on a GPU (measured near the best images/s for SD at 512 px on an H100), 4 on a CPU."""
        return 16 if resolve_device(self.device).type == "cuda" else 4

    def pretrained_location(self) -> str:
        """What `from_pretrained` loads: the hub id or local folder as configured."""
        return self.model

    def load(self) -> None:
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()  # e.g. "CLIPImageProcessor requires torchvision"
        try:
            pipe = StableDiffusionImageVariationPipeline.from_pretrained(
                self.pretrained_location(),
                revision=self.revision,
                dtype=dtype,
                safety_checker=None,
                requires_safety_checker=False,
            )
        except (OSError, ValueError) as error:
            raise UserError(
                f"cannot load model {self.model!r} (revision {self.revision}): {str(error).splitlines()[0]} "
                "-- with no network (HF_HUB_OFFLINE=1) it must already be in the Hugging Face cache; download it "
                "once with `hf download lambdalabs/sd-image-variations-diffusers --revision v2.0` or set "
                "generator.model=/path/to/a/local/copy"
            ) from None
        pipe.set_progress_bar_config(disable=True)
        if self.compile:
            # CUDA graphs remove the per-step launch overhead; compiling takes about a minute, once per shape.
            pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead" if device.type == "cuda" else "default")
        self._pipe = pipe.to(device)
        log.info("loaded %s (%s weights) on %s as %s", self.model, self.weights, device, dtype)

    def prepare(self, square: Image.Image) -> torch.Tensor:
        """The photo's pixels as a uint8 CHW tensor (a copy made on the factory's worker threads).

        No torch arithmetic here: torch ops on several threads at once oversubscribe its thread pool.
        """
        return torch.from_numpy(np.array(square, dtype=np.uint8)).permute(2, 0, 1)

    def clip_input(self, pixels: list[torch.Tensor]) -> torch.Tensor:
        """The model card's preprocessing: [0, 1] floats, bicubic resize WITHOUT antialiasing, CLIP mean/std.

        PIL input would go through the feature extractor, which antialiases: not what the model was trained on.
        """
        processor = self._pipe.feature_extractor
        side = self._pipe.image_encoder.config.image_size
        resized = [
            F.interpolate(
                image[None].float() / 255.0, size=(side, side), mode="bicubic", align_corners=False, antialias=False
            )
            for image in pixels
        ]
        mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
        return (torch.cat(resized) - mean) / std

    def generate(self, inputs: list[torch.Tensor], seeds: list[int]) -> list[Variation | SkipImage]:
        pipe = self._pipe
        generators = [torch.Generator(device=pipe.device).manual_seed(seed) for seed in seeds]
        with torch.inference_mode():
            output = pipe(
                self.clip_input(inputs).to(pipe.device),
                height=self.gen_size,
                width=self.gen_size,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance_scale,
                generator=generators,
                output_type="pil",
            )
        return [Variation(image) for image in output.images]
