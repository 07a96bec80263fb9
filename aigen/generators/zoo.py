"""The generator zoo: pixel-aligned and semantic fakes of the same photos from open diffusers models.

pixel (the fake is the photo regenerated in place, so a detector can only learn the generator's traces):
- `vae`: autoencoder reconstruction, no diffusion ("Aligned Datasets", Rajan et al., ICLR 2025).
- `img2img`: SD-family image-to-image at a low strength (SDEdit; any SD 1.x / 2.x / SDXL / SD3 / FLUX checkpoint).
- `inpaint`: inpainting with an all-zero mask and an empty prompt (DRCT, ICML 2024; B-Free, CVPR 2025).
semantic (a new image of what the photo shows):
- `unclip`: Stable unCLIP img2img, SD 2.1 conditioned on the photo's CLIP image embedding.
- `kandinsky`: Kandinsky 2.2's decoder on the image embedding of the prior's CLIP image encoder.
(`sd`, the image-variation model, is in aigen.generators.sd.)
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import torch
from PIL import Image

from aigen.checks import number, text, whole_number
from aigen.errors import UserError
from aigen.generators.diffusers_base import (
    DiffusersGenerator,
    PriorGenerator,
    model_tag,
    pixels_to_tensor,
    short_hash,
    tensor_to_images,
)

if TYPE_CHECKING:  # imported when a model loads (aigen.generators.diffusers_base)
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

LATENT_SAMPLING = ("sample", "mode")


def call_parameters(pipe) -> set[str]:
    return set(inspect.signature(pipe.__call__).parameters)


class VAEReconstruction(DiffusersGenerator):
    """`vae`: encode the photo, take the latent (a sample drawn with the image's seed, or the mode), decode it.

    Any AutoencoderKL by id + subfolder (stabilityai/sd-vae-ft-mse; the `vae` of an SD 1.5, SDXL, SD3 or FLUX
    repository, with their 4 or 16 latent channels). No diffusion steps. dtype=auto is float32 on CUDA too: the
    VAE is small, and float16 overflows in some of them (SDXL's).
    """

    alignment = "pixel"
    kind = "component"
    native_sides = True
    auto_cuda_dtype = torch.float32
    # SD's VAE (84M) in fp16: 0.17 GB; per image at 512 px, encoder and decoder activations. Estimates.
    weight_gib = 0.17
    denoise_gib_per_image = 0.0
    decode_gib_per_image = 1.0

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        subfolder: str | None = None,
        latent: str = "sample",
        gen_size: int = 512,
        name: str = "vae",
        **options,
    ) -> None:
        if latent not in LATENT_SAMPLING:
            raise UserError(f"generator.latent={latent!r} is not one of {', '.join(LATENT_SAMPLING)}")
        if options.get("scheduler"):
            raise UserError("generator.scheduler: the vae generator has no diffusion steps, hence no scheduler")
        super().__init__(model, revision, gen_size, name=name, subfolder=subfolder, **options)
        self.latent = latent
        self.seeded = latent == "sample"  # the mode is the same whatever the seed

    def settings(self) -> dict:
        return {"latent": self.latent}

    def dir_tags(self) -> list[str]:
        return [model_tag(self.model), self.latent]

    def plan_detail(self) -> str:
        return f"reconstruction ({self.latent} of the latent)"

    def load_model(self, location: str, dtype: torch.dtype):
        from diffusers import AutoencoderKL

        subfolder = {"subfolder": self.subfolder} if self.subfolder else {}
        return self.from_pretrained(AutoencoderKL, location, dtype, **subfolder)

    def autoencoder(self, vae):
        return vae

    def compiled_modules(self, vae) -> list[torch.nn.Module]:
        return [vae.encoder, vae.decoder]

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        vae = self._pipe
        pixels = pixels_to_tensor(inputs).to(vae.device, vae.dtype)
        distribution = vae.encode(pixels).latent_dist
        latents = distribution.sample(generator=generators) if self.latent == "sample" else distribution.mode()
        return tensor_to_images(vae.decode(latents).sample)


class Prompted(DiffusersGenerator):
    """What the text-conditioned generators share: steps, guidance, a prompt (empty by default) and an optional
    negative prompt, checked before any work and recorded (the prompts hashed into the dir name)."""

    def __init__(
        self,
        model: str,
        revision: str | None,
        steps: int,
        guidance_scale: float,
        prompt: str,
        negative_prompt: str | None,
        gen_size: int,
        name: str,
        **options,
    ) -> None:
        whole_number("generator.steps", steps, 1)
        self.guidance_scale = number("generator.guidance_scale", guidance_scale, low=0)
        text("generator.prompt", prompt)
        text("generator.negative_prompt", negative_prompt, optional=True)
        super().__init__(model, revision, gen_size, name=name, **options)
        self.steps = steps
        self.prompt = prompt
        self.negative_prompt = negative_prompt

    def settings(self) -> dict:
        return {
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
        }

    def prompt_tags(self) -> list[str]:
        """`g<guidance>`, and a hash of the prompts when there are any."""
        tags = [f"g{self.guidance_scale}"]
        if self.prompt or self.negative_prompt:
            tags.append("p" + short_hash(self.prompt, self.negative_prompt))
        return tags

    def prompt_options(self, count: int) -> dict:
        """The pipeline's prompt arguments for a batch of `count`."""
        options = {
            "prompt": [self.prompt] * count,
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance_scale,
        }
        if self.negative_prompt is not None:
            options["negative_prompt"] = [self.negative_prompt] * count
        return options


class ImageToImage(Prompted):
    """`img2img`: AutoPipelineForImage2Image on the photo at gen_size; `strength` is the share of the diffusion
    run again (low: the same photo with the model's traces; high: a new image). The empty prompt by default."""

    alignment = "pixel"
    native_sides = True
    pipeline_class = "AutoPipelineForImage2Image"
    # SD 1.5: UNet (860M) + VAE (84M) + CLIP text (123M) in fp16: 2.1 GB; per image at 512 px: the UNet's
    # activations for both guidance halves and the VAE decoder's. Estimates (an SDXL/SD3/FLUX checkpoint needs
    # several times more: set batch_size).
    weight_gib = 2.1
    denoise_gib_per_image = 0.4
    decode_gib_per_image = 0.8

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        strength: float = 0.3,
        steps: int = 50,
        guidance_scale: float = 7.5,
        prompt: str = "",
        negative_prompt: str | None = None,
        gen_size: int = 512,
        name: str = "img2img",
        **options,
    ) -> None:
        whole_number("generator.steps", steps, 1)
        strength = number("generator.strength", strength)
        if not 0 < strength <= 1:
            raise UserError(f"generator.strength={strength} must be in (0, 1]: the share of the steps run again")
        if int(steps * strength) < 1:
            raise UserError(
                f"generator.strength={strength} x generator.steps={steps} leaves no denoising step: "
                "strength * steps must be at least 1"
            )
        super().__init__(model, revision, steps, guidance_scale, prompt, negative_prompt, gen_size, name, **options)
        self.strength = strength

    def settings(self) -> dict:
        return super().settings() | {"strength": self.strength}

    def dir_tags(self) -> list[str]:
        return [model_tag(self.model), f"st{self.strength}", *self.prompt_tags(), *self.big_model_tags()]

    def plan_detail(self) -> str:
        return f"strength {self.strength} of {self.steps} steps"

    def check_loaded(self, pipe) -> None:
        accepted = call_parameters(pipe)
        for option in ("strength", "negative_prompt"):
            if getattr(self, option) is not None and option not in accepted:
                raise UserError(f"generator.{option}: {type(pipe).__name__} ({self.model}) takes no {option}")

    def call_options(self, count: int, side: int) -> dict:
        """The pipeline's arguments for `count` images of `side` pixels (gen_size, or their native side)."""
        options = self.prompt_options(count) | {"strength": self.strength, "output_type": "pil"}
        if "height" in call_parameters(self._pipe):  # SD's img2img takes the image's size; FLUX's asks for it
            options |= {"height": side, "width": side}
        return options

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        options = self.call_options(len(inputs), inputs[0].width)
        return self._pipe(image=inputs, generator=generators, **options).images


class Inpaint(ImageToImage):
    """`inpaint`: AutoPipelineForInpainting with an all-zero mask (keep everything) and the empty prompt: the
    whole photo regenerated from noise (strength 1) by a model that sees it as its masked-image input.

    Only an inpainting checkpoint does that: its denoiser takes the noisy latents, the mask and the masked image's
    latents (2 x latent channels + 1, e.g. 9 for SD). A plain checkpoint blends the original latents back
    wherever the mask is 0, at every step, so it would return the VAE's reconstruction: refused (use vae).
    """

    pipeline_class = "AutoPipelineForInpainting"
    # SD 2 inpainting: UNet (865M) + VAE (84M) + OpenCLIP-H text (354M) in fp16: 2.6 GB. Estimates.
    weight_gib = 2.6

    def __init__(self, model: str, revision: str | None = None, strength: float = 1.0, name: str = "inpaint", **kw):
        super().__init__(model, revision, strength=strength, name=name, **kw)

    def check_loaded(self, pipe) -> None:
        super().check_loaded(pipe)
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        autoencoder = self.autoencoder(pipe)
        if denoiser is None or autoencoder is None:
            return
        latent = autoencoder.config.latent_channels
        channels = denoiser.config.in_channels
        if channels != 2 * latent + 1:
            raise UserError(
                f"generator.model={self.model!r} is not an inpainting checkpoint (its denoiser takes {channels} "
                f"channels, not {2 * latent + 1}): with an all-zero mask it would return only the VAE's "
                "reconstruction; use an inpainting model, or generator=vae"
            )

    def plan_detail(self) -> str:
        return f"all-zero mask, strength {self.strength} of {self.steps} steps"

    def call_options(self, count: int, side: int) -> dict:
        keep_everything = Image.new("L", (side, side), 0)
        return super().call_options(count, side) | {"mask_image": [keep_everything] * count}


class UnCLIPVariation(Prompted):
    """`unclip`: StableUnCLIPImg2ImgPipeline; the photo's CLIP image embedding, noised to `noise_level` (0 = as
    it is), conditions SD 2.1 next to the (empty) prompt."""

    alignment = "semantic"
    pipeline_class = "StableUnCLIPImg2ImgPipeline"
    # unclip-small: SD 2.1 UNet (865M) + VAE + OpenCLIP-H text (354M) + CLIP ViT-L/14 image (304M): 3.2 GB fp16.
    weight_gib = 3.2
    denoise_gib_per_image = 0.4
    decode_gib_per_image = 0.8

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        steps: int = 20,
        guidance_scale: float = 10.0,
        noise_level: int = 0,
        prompt: str = "",
        negative_prompt: str | None = None,
        gen_size: int = 512,
        name: str = "unclip",
        **options,
    ) -> None:
        whole_number("generator.noise_level", noise_level, 0)
        super().__init__(model, revision, steps, guidance_scale, prompt, negative_prompt, gen_size, name, **options)
        self.noise_level = noise_level

    def settings(self) -> dict:
        return super().settings() | {"noise_level": self.noise_level}

    def dir_tags(self) -> list[str]:
        return [model_tag(self.model), f"n{self.noise_level}", *self.prompt_tags(), *self.big_model_tags()]

    def plan_detail(self) -> str:
        return f"noise level {self.noise_level}, {self.steps} steps"

    def check_loaded(self, pipe) -> None:
        levels = pipe.image_noising_scheduler.config.num_train_timesteps
        if self.noise_level >= levels:
            raise UserError(f"generator.noise_level={self.noise_level} must be below {levels} for {self.model}")

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        return self._pipe(
            image=inputs,
            height=self.gen_size,
            width=self.gen_size,
            noise_level=self.noise_level,
            generator=generators,
            output_type="pil",
            **self.prompt_options(len(inputs)),
        ).images


class KandinskyVariation(PriorGenerator):
    """`kandinsky`: Kandinsky 2.2. The prior's CLIP image encoder embeds the photo (as the prior pipeline's
    `interpolate` does for one image; the text prior is not needed), and KandinskyV22Pipeline decodes that
    embedding, guided away from the embedding of an all-zero image (the prior's `get_zero_embed`)."""

    alignment = "semantic"
    pipeline_class = "KandinskyV22Pipeline"
    # decoder UNet (1.22B) + MoVQ (67M) + the prior's CLIP ViT-bigG/14 image tower (1.84B) in fp16: 6.3 GB;
    # per image at 512 px: the UNet's activations for both guidance halves and MoVQ's decoder. Estimates.
    weight_gib = 6.3
    denoise_gib_per_image = 0.6
    decode_gib_per_image = 0.8

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        prior_model: str = "kandinsky-community/kandinsky-2-2-prior",
        prior_revision: str | None = None,
        steps: int = 50,
        guidance_scale: float = 4.0,
        gen_size: int = 512,
        name: str = "kandinsky",
        **options,
    ) -> None:
        if isinstance(gen_size, int) and gen_size % 64:
            raise UserError(
                f"generator.gen_size={gen_size} must be a multiple of 64 for Kandinsky (MoVQ's 8x times its UNet's)"
            )
        super().__init__(model, revision, prior_model, prior_revision, steps, guidance_scale, gen_size, name, **options)
        self._image_encoder: CLIPVisionModelWithProjection | None = None
        self._image_processor: CLIPImageProcessor | None = None

    def plan_detail(self) -> str:
        return f"image embeddings from {self.prior_model}, {self.steps} steps"

    def load_model(self, location: str, dtype: torch.dtype):
        from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

        decoder = super().load_model(location, dtype)
        self._image_encoder = self.load_prior(CLIPVisionModelWithProjection, dtype, subfolder="image_encoder")
        self._image_processor = self.load_prior(CLIPImageProcessor, None, subfolder="image_processor")
        return decoder

    def attach(self, pipe, device: torch.device) -> None:
        super().attach(pipe, device)
        self._image_encoder.to(device).eval()

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        encoder = self._image_encoder
        pixels = self._image_processor(inputs, return_tensors="pt").pixel_values
        embeds = encoder(pixels.to(encoder.device, encoder.dtype)).image_embeds
        side = encoder.config.image_size
        zero = encoder(torch.zeros(1, 3, side, side, device=encoder.device, dtype=encoder.dtype)).image_embeds
        return self._pipe(
            image_embeds=embeds,
            negative_image_embeds=zero.repeat(len(inputs), 1),
            height=self.gen_size,
            width=self.gen_size,
            num_inference_steps=self.steps,
            guidance_scale=self.guidance_scale,
            generator=generators,
            output_type="pil",
        ).images
