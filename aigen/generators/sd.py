"""Stable Diffusion image variations conditioned on a CLIP image embedding (lambdalabs/sd-image-variations)."""

from __future__ import annotations

import logging
import os

import diffusers
import numpy as np
import torch
import torch.nn.functional as F
import transformers
from diffusers import StableDiffusionImageVariationPipeline
from PIL import Image

from aigen.devices import resolve_device
from aigen.errors import SkipImage, UserError
from aigen.generators.base import Generator, Variation

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """fp16 on CUDA (the model's published precision), fp32 elsewhere (CPU half precision is slow)."""
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise UserError(f"generator.dtype={dtype!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def is_local_path(model: str) -> bool:
    """A folder rather than a hub id (`org/name`): absolute, relative with `.` or `~`, or not of the form a/b."""
    return model.startswith(("/", ".", "~")) or model.count("/") != 1 or os.path.isdir(model)


def check_whole_number(option: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"generator.{option}={value!r} must be a whole number, at least {low}")


class SDImageVariation(Generator):
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
        check_whole_number("steps", steps, 1)
        check_whole_number("gen_size", gen_size, 8)
        if gen_size % 8:
            raise UserError(f"generator.gen_size={gen_size} must be a positive multiple of 8")
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, int | float):
            raise UserError(f"guidance_scale={guidance_scale!r} must be a number")
        if weights == "pretrained" and is_local_path(model) and not os.path.isdir(os.path.expanduser(model)):
            raise UserError(f"generator.model={model!r}: folder does not exist (a hub id looks like org/name)")
        self.name = name
        self.model = model
        self.revision = revision
        self.steps = steps
        self.guidance_scale = float(guidance_scale)
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

    def dir_tags(self) -> list[str]:
        return [f"g{self.guidance_scale}"]

    def plan(self, count: int, whole: int | None = None) -> str:
        device = resolve_device(self.device)
        return (
            f"{self.name}: {count} images with {self.model} ({self.weights} weights), {self.steps} steps, on {device}"
        )

    def default_batch_size(self) -> int:
        """16 on a GPU (measured near the best images/s for SD at 512 px on an H100), 4 on a CPU."""
        return 16 if resolve_device(self.device).type == "cuda" else 4

    def pretrained_location(self) -> str:
        """What `from_pretrained` loads: the hub id or local folder as configured."""
        return os.path.expanduser(self.model) if is_local_path(self.model) else self.model

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
            raise UserError(self.load_error(error)) from None
        pipe.set_progress_bar_config(disable=True)
        if self.compile:
            # CUDA graphs remove the per-step launch overhead; compiling takes about a minute, once per shape.
            pipe.unet = torch.compile(pipe.unet, mode="reduce-overhead" if device.type == "cuda" else "default")
        self._pipe = pipe.to(device)
        log.info("loaded %s (%s weights) on %s as %s", self.model, self.weights, device, dtype)

    def load_error(self, error: Exception) -> str:
        """One line: what failed, and the way out that fits (a local folder, or the hub cache when offline)."""
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = self.pretrained_location()
        if is_local_path(where):
            return f"cannot load model from the folder {where}: {reason}"
        offline = (
            " (HF_HUB_OFFLINE is set: only the Hugging Face cache is used)"
            if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0")
            else ""
        )
        return (
            f"cannot load model {self.model!r} (revision {self.revision}){offline}: {reason} -- download it once "
            f"with `hf download {self.model} --revision {self.revision}`, or set generator.model=/path/to/a/local/copy"
        )

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
