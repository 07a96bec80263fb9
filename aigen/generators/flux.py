"""FLUX generators (Black Forest Labs, 2024-26): the models detectors meet now, each fake paired with its photo.

pixel (the photo regenerated in place):
- `flux_fill`: FLUX.1 Fill dev with an all-zero mask: the whole photo regenerated from noise by a model that sees
  it as its masked-image input (DRCT / B-Free's reconstruction, as `inpaint` with SD).
semantic (a new image of the photo; a re-rendering keeps its layout only as far as the model follows the words):
- `flux_redux`: the FLUX.1 Redux dev prior turns the photo into FLUX.1 dev's conditioning (image variations, the
  successor of `sd`'s).
- `flux_kontext`: FLUX.1 Kontext dev, the photo plus an instruction (`prompt`) asking to keep it as it is.
- `flux2_klein`: FLUX.2 klein 4B (Apache-2.0), image-conditioned, with the same kind of instruction.

All run in bfloat16 on CUDA (the published precision; float16 overflows in T5) and take gen_size in multiples of
16 (8x autoencoders, 2x2 latent patches). Their tiny random twins are built in aigen.generators.tiny_flux.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from PIL import Image

from aigen.errors import UserError
from aigen.generators.diffusers_base import PriorGenerator, model_tag
from aigen.generators.zoo import ImageToImage, Prompted

if TYPE_CHECKING:  # imported when a model loads (aigen.generators.diffusers_base)
    from diffusers import FluxPriorReduxPipeline

FLUX_MULTIPLE = 16
# What flux_kontext and flux2_klein are asked by default: the photo again, not an edit of it.
KEEP_PHOTO = (
    "Keep this photo exactly as it is: the same scene, subject, composition, colours and lighting, "
    "as an ordinary unedited photograph."
)
# Weights by component, 16-bit GiB, from parameter counts (ESTIMATES, not measured on a GPU):
# FLUX.1 dev's transformer 11.9B, T5-XXL encoder 4.76B, CLIP ViT-L text 123M, autoencoder 84M.
FLUX1_GIB = {"transformer": 22.2, "text_encoder_2": 8.9, "text_encoder": 0.23, "vae": 0.16}
# FLUX.1 dev without text encoders, and the Redux prior: SigLIP so400m vision tower 428M, Redux embedder 64M.
FLUX1_REDUX_GIB = {"transformer": 22.2, "vae": 0.16, "image_encoder": 0.8, "image_embedder": 0.12}
# FLUX.2 klein 4B: its transformer (about 4B), the Qwen3-4B text encoder (4.0B), FLUX.2's autoencoder (84M).
FLUX2_KLEIN_GIB = {"transformer": 7.5, "text_encoder": 7.5, "vae": 0.16}


def check_flux_size(gen_size: object) -> None:
    if isinstance(gen_size, int) and not isinstance(gen_size, bool) and gen_size % FLUX_MULTIPLE:
        raise UserError(
            f"generator.gen_size={gen_size} must be a multiple of {FLUX_MULTIPLE} for FLUX (8x autoencoder, "
            "2x2 latent patches)"
        )


class FluxFill(ImageToImage):
    """`flux_fill`: FluxFillPipeline with an all-zero mask (keep everything) at strength 1: every pixel generated.

    Only a Fill checkpoint does that: its transformer takes the noisy latents, the masked photo's latents and the
    mask folded into the autoencoder's 8x8 blocks, all packed into 2x2 patches (384 channels for FLUX.1 Fill dev).
    Another FLUX checkpoint loaded into this pipeline is refused.
    """

    pipeline_class = "FluxFillPipeline"
    auto_cuda_dtype = torch.bfloat16
    components_gib = FLUX1_GIB
    weight_gib = sum(FLUX1_GIB.values())
    denoise_gib_per_image = 0.3  # 1024 image + 512 text tokens through 57 blocks at 512 px
    decode_gib_per_image = 0.8

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        strength: float = 1.0,
        steps: int = 50,
        guidance_scale: float = 30.0,
        prompt: str = "",
        gen_size: int = 512,
        name: str = "flux_fill",
        **options,
    ) -> None:
        check_flux_size(gen_size)
        super().__init__(model, revision, strength, steps, guidance_scale, prompt, None, gen_size, name, **options)

    def plan_detail(self) -> str:
        return f"all-zero mask, strength {self.strength} of {self.steps} steps"

    def check_loaded(self, pipe) -> None:
        super().check_loaded(pipe)
        expected = 4 * (2 * pipe.vae.config.latent_channels + pipe.vae_scale_factor**2)
        channels = pipe.transformer.config.in_channels
        if channels != expected:
            raise UserError(
                f"generator.model={self.model!r} is not a FLUX Fill checkpoint (its transformer takes {channels} "
                f"channels, not {expected}): use black-forest-labs/FLUX.1-Fill-dev or another Fill model"
            )

    def call_options(self, count: int, side: int) -> dict:
        keep_everything = Image.new("L", (side, side), 0)
        return super().call_options(count, side) | {"mask_image": [keep_everything] * count}


class InstructedEdit(Prompted):
    """An image-conditioned FLUX model asked, in words (`prompt`), to re-render the photo; the instruction is
    recorded in every row and hashed into the dataset dir's name. No negative prompt: Kontext dev is
    guidance-distilled (guidance_scale is an input of the model) and klein 4B step-distilled (no guidance)."""

    alignment = "semantic"  # a new rendering: the layout is kept by the instruction, not by construction
    auto_cuda_dtype = torch.bfloat16
    decode_gib_per_image = 0.8

    def __init__(
        self,
        model: str,
        revision: str | None,
        steps: int,
        guidance_scale: float,
        prompt: str,
        gen_size: int,
        name: str,
        **options,
    ) -> None:
        check_flux_size(gen_size)
        super().__init__(model, revision, steps, guidance_scale, prompt, None, gen_size, name, **options)

    def dir_tags(self) -> list[str]:
        return [model_tag(self.model), *self.prompt_tags(), *self.big_model_tags()]

    def plan_detail(self) -> str:
        return f"the instruction {self.prompt!r}, {self.steps} steps"


class FluxKontext(InstructedEdit):
    """`flux_kontext`: FluxKontextPipeline. The photo enters at gen_size (not resized to Kontext's preferred
    resolutions: a square's is 1024, so gen_size=1024 is the model's own), the fake comes out at gen_size."""

    pipeline_class = "FluxKontextPipeline"
    components_gib = FLUX1_GIB
    weight_gib = sum(FLUX1_GIB.values())
    denoise_gib_per_image = 0.5  # the photo's 1024 tokens beside the 1024 generated ones at 512 px

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        steps: int = 28,
        guidance_scale: float = 2.5,
        prompt: str = KEEP_PHOTO,
        gen_size: int = 512,
        name: str = "flux_kontext",
        **options,
    ) -> None:
        super().__init__(model, revision, steps, guidance_scale, prompt, gen_size, name, **options)

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        side = self.gen_size
        return self._pipe(
            image=inputs,
            height=side,
            width=side,
            max_area=side * side,  # Kontext rescales the output to this area
            _auto_resize=False,
            generator=generators,
            output_type="pil",
            **self.prompt_options(len(inputs)),
        ).images


class Flux2Klein(InstructedEdit):
    """`flux2_klein`: Flux2KleinPipeline with the photo as its reference image. One call per photo: the pipeline
    reads a list of images as several references for one prompt, not as a batch."""

    pipeline_class = "Flux2KleinPipeline"
    components_gib = FLUX2_KLEIN_GIB
    weight_gib = sum(FLUX2_KLEIN_GIB.values())
    denoise_gib_per_image = 0.5  # the reference's tokens beside the generated ones

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        steps: int = 4,
        guidance_scale: float = 1.0,
        prompt: str = KEEP_PHOTO,
        gen_size: int = 512,
        name: str = "flux2_klein",
        **options,
    ) -> None:
        super().__init__(model, revision, steps, guidance_scale, prompt, gen_size, name, **options)

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        side = self.gen_size
        return [
            self._pipe(
                image=photo,
                height=side,
                width=side,
                generator=generator,
                output_type="pil",
                **self.prompt_options(1),
            ).images[0]
            for photo, generator in zip(inputs, generators, strict=True)
        ]


class FluxRedux(PriorGenerator):
    """`flux_redux`: the FLUX.1 Redux dev prior (SigLIP image encoder + Redux embedder) turns the photo into the
    conditioning of FLUX.1 dev (loaded without its text encoders), which makes a new image of it.

    One prior call per photo: the prior sums a batch of images into one embedding (an image mix), not a batch.
    """

    alignment = "semantic"
    pipeline_class = "FluxPipeline"
    auto_cuda_dtype = torch.bfloat16
    components_gib = FLUX1_REDUX_GIB
    weight_gib = sum(FLUX1_REDUX_GIB.values())
    denoise_gib_per_image = 0.3
    decode_gib_per_image = 0.8
    tiny_prior_folder = "prior"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        prior_model: str = "black-forest-labs/FLUX.1-Redux-dev",
        prior_revision: str | None = None,
        steps: int = 50,
        guidance_scale: float = 2.5,
        gen_size: int = 512,
        name: str = "flux_redux",
        **options,
    ) -> None:
        check_flux_size(gen_size)
        super().__init__(model, revision, prior_model, prior_revision, steps, guidance_scale, gen_size, name, **options)
        self._prior: FluxPriorReduxPipeline | None = None

    def plan_detail(self) -> str:
        return f"image conditioning from {self.prior_model}, {self.steps} steps"

    def load_model(self, location: str, dtype: torch.dtype):
        from diffusers import FluxPipeline, FluxPriorReduxPipeline

        extra = self.pipeline_kwargs(FluxPipeline, location)
        pipe = self.from_pretrained(FluxPipeline, location, dtype, text_encoder=None, text_encoder_2=None, **extra)
        self._prior = self.load_prior(FluxPriorReduxPipeline, dtype)
        return pipe

    def attach(self, pipe, device: torch.device) -> None:
        super().attach(pipe, device)
        self._prior = self.place(self._prior, device)

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        conditions = [self._prior(image=photo) for photo in inputs]
        return self._pipe(
            prompt_embeds=torch.cat([condition.prompt_embeds for condition in conditions]),
            pooled_prompt_embeds=torch.cat([condition.pooled_prompt_embeds for condition in conditions]),
            height=self.gen_size,
            width=self.gen_size,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            generator=generators,
            output_type="pil",
        ).images
