"""Stable Diffusion image variations conditioned on a CLIP image embedding (lambdalabs/sd-image-variations)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from aigen.checks import number, whole_number
from aigen.generators.diffusers_base import DiffusersGenerator


class SDImageVariation(DiffusersGenerator):
    """`StableDiffusionImageVariationPipeline` loaded with `from_pretrained` (hub id + revision, or a local path).

    Semantic fakes: a new image of what CLIP sees in the photo, not the photo's pixels.
    """

    alignment = "semantic"
    pipeline_class = "StableDiffusionImageVariationPipeline"
    # SD v1 UNet (860M) + VAE (84M) + CLIP ViT-L/14 image tower (304M) in fp16: 2.5 GB; per image at 512 px: the
    # UNet's activations for both guidance halves (~0.4 GB) and the VAE decoder's (~0.8 GB). Estimates.
    weight_gib = 2.5
    denoise_gib_per_image = 0.4
    decode_gib_per_image = 0.8

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
        **options,
    ) -> None:
        whole_number("generator.steps", steps, 1)
        number("guidance_scale", guidance_scale)
        super().__init__(
            model,
            revision,
            gen_size,
            device=device,
            dtype=dtype,
            name=name,
            weights=weights,
            input_side=input_side,
            compile=compile,
            **options,
        )
        self.steps = steps
        self.guidance_scale = float(guidance_scale)

    def settings(self) -> dict:
        return {"steps": self.steps, "guidance_scale": self.guidance_scale}

    def dir_tags(self) -> list[str]:
        return [f"g{self.guidance_scale}", *self.big_model_tags()]

    def plan_detail(self) -> str:
        return f"{self.steps} steps"

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

    def run(self, inputs: list[torch.Tensor], generators: list[torch.Generator]) -> list[Image.Image]:
        pipe = self._pipe
        output = pipe(
            self.clip_input(inputs).to(pipe.device),
            height=self.gen_size,
            width=self.gen_size,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            generator=generators,
            output_type="pil",
        )
        return output.images
