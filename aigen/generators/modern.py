"""The 2025-26 open generators on the shared diffusers base: what people make fakes with now.

pixel (the photo regenerated in place):
- `sd35`: SD 3.5 image-to-image (StableDiffusion3Img2ImgPipeline), and `sd35_inpaint` with an all-zero mask.
- `sdxl`: SDXL image-to-image (the refiner too: `sdxl_refiner`), and `sdxl_inpaint` with an all-zero mask.
- `zimage`: Z-Image image-to-image (ZImageImg2ImgPipeline).
semantic (a new rendering of the photo):
- `qwen_edit`: Qwen-Image-Edit-2509 (QwenImageEditPlusPipeline) asked to re-render the photo as it is.

The image-to-image and inpainting ones are aigen.generators.zoo's ImageToImage and Inpaint with the model's own
pipeline class and memory estimates; the inpainting checks (a denoiser with 2 x latent + 1 input channels) apply.
"""

from __future__ import annotations

import torch
from PIL import Image

from aigen.errors import UserError
from aigen.generators.diffusers_base import GIB, MIN_GIB_PER_IMAGE, model_tag
from aigen.generators.zoo import ImageToImage, Inpaint, Prompted

# The transformers (MMDiT/DiT) pipelines pack 2x2 latent patches of an 8x autoencoder: sides in steps of 16.
TRANSFORMER_SIDE = 16


def check_side(gen_size: object, multiple: int, name: str) -> None:
    if isinstance(gen_size, int) and not isinstance(gen_size, bool) and gen_size % multiple:
        raise UserError(f"generator.gen_size={gen_size} must be a multiple of {multiple} for {name}")


class SD3ImageToImage(ImageToImage):
    """`sd35`: StableDiffusion3Img2ImgPipeline (MMDiT, CLIP-L + CLIP-G + T5-XXL), SDEdit at `strength`."""

    pipeline_class = "StableDiffusion3Img2ImgPipeline"
    auto_cuda_dtype = torch.bfloat16  # SD 3.5's published precision
    # SD 3.5 medium: MMDiT-X (2.5B) + CLIP-L (123M) + CLIP-G (695M) + T5-XXL encoder (4.8B) + VAE (84M) in 16 bits:
    # 15.2 GiB; per image at 512 px: the transformer's activations for both guidance halves, the 16-channel VAE's
    # decoder. Estimates.
    weight_gib = 15.2
    denoise_gib_per_image = 0.5
    decode_gib_per_image = 0.8

    def __init__(self, model: str, name: str = "sd35", gen_size: int = 512, **options) -> None:
        check_side(gen_size, TRANSFORMER_SIDE, "SD 3.5")
        super().__init__(model, name=name, gen_size=gen_size, **options)


class SD3Inpaint(Inpaint):
    """`sd35_inpaint`: StableDiffusion3InpaintPipeline with an all-zero mask, from noise (strength 1). Only a
    33-channel SD3 inpainting transformer regenerates the photo; SD 3.5's own (16 channels) would return its VAE's
    reconstruction and is refused (none of the SD3 transformers has an inpainting release: diffusers issue 9339)."""

    pipeline_class = "StableDiffusion3InpaintPipeline"
    auto_cuda_dtype = torch.bfloat16
    weight_gib = SD3ImageToImage.weight_gib
    denoise_gib_per_image = SD3ImageToImage.denoise_gib_per_image
    decode_gib_per_image = SD3ImageToImage.decode_gib_per_image

    def __init__(self, model: str | None, name: str = "sd35_inpaint", gen_size: int = 512, **options) -> None:
        if model is None and options.get("tiny") is None:
            raise UserError(
                "generator.model is required for sd35_inpaint: an SD3 inpainting checkpoint (a transformer with 33 "
                "input channels); SD 3.5 itself has none (for its VAE's reconstruction use generator=vae "
                "generator.model=stabilityai/stable-diffusion-3.5-medium generator.subfolder=vae)"
            )
        check_side(gen_size, TRANSFORMER_SIDE, "SD 3")
        super().__init__(model, name=name, gen_size=gen_size, **options)


class WithoutWatermark:
    """SDXL's pipelines stamp an invisible watermark on every image when the `invisible-watermark` package happens
    to be installed: pixels that would depend on the environment, and a mark a detector could learn instead of the
    generator's traces. Never added."""

    def pipeline_kwargs(self, loader, location: str) -> dict:
        return super().pipeline_kwargs(loader, location) | {"add_watermarker": False}


class SDXLImageToImage(WithoutWatermark, ImageToImage):
    """`sdxl`: StableDiffusionXLImg2ImgPipeline on SDXL base (SDEdit at `strength`)."""

    pipeline_class = "StableDiffusionXLImg2ImgPipeline"
    # SDXL base: UNet (2.6B) + CLIP-L (123M) + OpenCLIP-bigG (695M) + VAE (84M) in fp16: 6.5 GiB; per image at
    # 512 px: the UNet's activations for both halves; the VAE decodes in float32 (it overflows in fp16). Estimates.
    weight_gib = 6.5
    denoise_gib_per_image = 0.5
    decode_gib_per_image = 1.6

    def __init__(self, model: str, name: str = "sdxl", **options) -> None:
        super().__init__(model, name=name, **options)


class SDXLRefiner(SDXLImageToImage):
    """`sdxl_refiner`: the SDXL refiner, an image-to-image model itself (OpenCLIP-bigG only, an aesthetic score)."""

    # UNet (2.3B) + OpenCLIP-bigG (695M) + VAE (84M) in fp16: 5.7 GiB. Estimates.
    weight_gib = 5.7

    def __init__(self, model: str, name: str = "sdxl_refiner", **options) -> None:
        super().__init__(model, name=name, **options)


class SDXLInpaint(WithoutWatermark, Inpaint):
    """`sdxl_inpaint`: StableDiffusionXLInpaintPipeline with an all-zero mask on SDXL's 9-channel inpainting UNet."""

    pipeline_class = "StableDiffusionXLInpaintPipeline"
    weight_gib = SDXLImageToImage.weight_gib
    denoise_gib_per_image = SDXLImageToImage.denoise_gib_per_image
    decode_gib_per_image = SDXLImageToImage.decode_gib_per_image

    def __init__(self, model: str, name: str = "sdxl_inpaint", **options) -> None:
        super().__init__(model, name=name, **options)


class ZImageToImage(ImageToImage):
    """`zimage`: ZImageImg2ImgPipeline (a 6B single-stream DiT on Qwen3-4B's hidden states, FLUX's autoencoder)."""

    pipeline_class = "ZImageImg2ImgPipeline"
    auto_cuda_dtype = torch.bfloat16
    # Z-Image-Turbo: DiT (6.2B) + Qwen3-4B text encoder (4.0B) + VAE (84M) in bf16: 19.1 GiB; per image at 512 px:
    # one half (guidance 0) of the DiT's activations and the VAE's decoder. Estimates.
    weight_gib = 19.1
    denoise_gib_per_image = 0.3
    decode_gib_per_image = 0.8

    def __init__(self, model: str, name: str = "zimage", gen_size: int = 512, **options) -> None:
        check_side(gen_size, TRANSFORMER_SIDE, "Z-Image")
        super().__init__(model, name=name, gen_size=gen_size, **options)


class InstructionEdit(Prompted):
    """`qwen_edit`: QwenImageEditPlusPipeline: Qwen2.5-VL reads the photo and an instruction (`prompt`, by default
    to keep the photo as it is), the MMDiT renders the result conditioned on the photo's latents. One image per
    pipeline call (the pipeline's own limit); `guidance_scale` is its true classifier-free guidance scale, against
    `negative_prompt`."""

    alignment = "semantic"  # a new rendering: layout kept by the instruction, not by construction
    pipeline_class = "QwenImageEditPlusPipeline"
    auto_cuda_dtype = torch.bfloat16
    # Qwen-Image-Edit-2509: MMDiT (20.4B) + Qwen2.5-VL-7B (8.3B) + VAE (127M) in bf16: 53.7 GiB; per image at
    # 512 px: both halves over the output's and the photo's (at 1024x1024) latent tokens. Estimates.
    weight_gib = 53.7
    denoise_gib_per_image = 1.5
    decode_gib_per_image = 0.8

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        steps: int = 40,
        guidance_scale: float = 4.0,
        prompt: str = "",
        negative_prompt: str | None = " ",
        gen_size: int = 512,
        name: str = "qwen_edit",
        **options,
    ) -> None:
        check_side(gen_size, TRANSFORMER_SIDE, "Qwen-Image-Edit")
        super().__init__(model, revision, steps, guidance_scale, prompt, negative_prompt, gen_size, name, **options)

    def dir_tags(self) -> list[str]:
        return [model_tag(self.model), *self.prompt_tags(), *self.big_model_tags()]

    def plan_detail(self) -> str:
        return f"instruction edit, {self.steps} steps, one image per call"

    def memory_estimate(self, dtype: torch.dtype) -> tuple[float, float]:
        """One image at a time: its activations are paid once, whatever the batch; a batch adds only its pixels."""
        fixed, per_image = super().memory_estimate(dtype)
        return fixed + per_image, MIN_GIB_PER_IMAGE * GIB

    def load_model(self, location: str, dtype: torch.dtype):
        from diffusers import QwenImageEditPlusPipeline
        from transformers import Qwen2Tokenizer, Qwen2VLImageProcessorPil

        from aigen.generators.qwen_processor import ImageOnlyQwenProcessor

        processor = ImageOnlyQwenProcessor(
            image_processor=self.from_pretrained(Qwen2VLImageProcessorPil, location, None, subfolder="processor"),
            tokenizer=self.from_pretrained(Qwen2Tokenizer, location, None, subfolder="processor"),
        )
        return self.from_pretrained(QwenImageEditPlusPipeline, location, dtype, processor=processor)

    def run(self, inputs: list[Image.Image], generators: list[torch.Generator]) -> list[Image.Image]:
        return [
            self._pipe(
                image=photo,
                prompt=self.prompt,
                negative_prompt=self.negative_prompt,
                true_cfg_scale=self.guidance_scale,
                height=self.gen_size,
                width=self.gen_size,
                num_inference_steps=self.steps,
                generator=generator,
                output_type="pil",
            ).images[0]
            for photo, generator in zip(inputs, generators, strict=True)
        ]
