"""Tiny RANDOM-weight twins of every open generator, for tests and the offline demo (noise-like images).

One mechanism for all of them: a builder per generator makes the components from small configs with a fixed init
seed, `ensure_tiny_model` (aigen.generators.tiny_registry) saves them once into the local cache
(`generator.cache_dir`), and the generator then loads that folder through exactly the same `from_pretrained` code
as the real model (`generator.tiny=<name>`).
Text encoders get a byte-level CLIP tokenizer built here, offline (every byte is a token, no merges).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    KandinskyV22Pipeline,
    PNDMScheduler,
    StableDiffusionImageVariationPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableUnCLIPImg2ImgPipeline,
    UNet2DConditionModel,
    VQModel,
)
from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

INIT_SEED = 0
CLIP_IMAGE_SIZE = 32
TEXT_LENGTH = 77  # SD's tokenizer length: the pipelines pad every prompt to it
EMBED = 32  # the tiny models' width (text, image and cross-attention)


# ------------------------------------------------------------------------------------------ shared tiny parts


def sd_scheduler() -> PNDMScheduler:
    """SD v1's scheduler, so that a tiny model walks the real model's timesteps."""
    return PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )


def unclip_scheduler() -> DDIMScheduler:
    """Stable unCLIP 2.1's scheduler (v-prediction DDIM)."""
    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        set_alpha_to_one=False,
        steps_offset=1,
        clip_sample=False,
    )


def unclip_noising_scheduler() -> DDPMScheduler:
    """What noises Stable unCLIP's image embedding to `noise_level`."""
    return DDPMScheduler(beta_schedule="squaredcos_cap_v2")


def kandinsky_scheduler() -> DDPMScheduler:
    """Kandinsky 2.2 decoder's scheduler."""
    return DDPMScheduler(beta_schedule="linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, steps_offset=1)


def tiny_vae() -> AutoencoderKL:
    """Four blocks, so that it downsamples 8x as SD's VAE does."""
    torch.manual_seed(INIT_SEED)
    return AutoencoderKL(
        block_out_channels=[32, 32, 64, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
    )


def tiny_unet(**config) -> UNet2DConditionModel:
    torch.manual_seed(INIT_SEED)
    return UNet2DConditionModel(
        **{
            "block_out_channels": (32, 64),
            "layers_per_block": 2,
            "sample_size": 32,
            "in_channels": 4,
            "out_channels": 4,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
            "cross_attention_dim": EMBED,
            **config,
        }
    )


def tiny_image_encoder() -> CLIPVisionModelWithProjection:
    torch.manual_seed(INIT_SEED)
    return CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=EMBED,
            projection_dim=EMBED,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            image_size=CLIP_IMAGE_SIZE,
            patch_size=4,
        )
    )


def byte_level_vocabulary() -> dict[str, int]:
    """GPT-2/CLIP's printable stand-ins for the 256 bytes, each also as a word end (`</w>`), then the specials."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters, extra = [], 0
    for byte in range(256):
        if byte in printable:
            characters.append(chr(byte))
        else:
            characters.append(chr(256 + extra))
            extra += 1
    tokens = [*characters, *(character + "</w>" for character in characters), "<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}


def tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer made offline: byte-level BPE without merges (514 tokens), SD's length of 77."""
    return CLIPTokenizer(vocab=byte_level_vocabulary(), merges=[], model_max_length=TEXT_LENGTH)


def tiny_text_config(**overrides) -> CLIPTextConfig:
    """The tiny CLIP text encoders' config, for the byte-level tokenizer above."""
    return CLIPTextConfig(
        vocab_size=len(byte_level_vocabulary()),
        hidden_size=EMBED,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        max_position_embeddings=TEXT_LENGTH,
        bos_token_id=512,
        eos_token_id=513,
        pad_token_id=513,
        **overrides,
    )


def tiny_text_encoder() -> CLIPTextModel:
    torch.manual_seed(INIT_SEED)
    return CLIPTextModel(tiny_text_config())


def clip_processor(side: int = CLIP_IMAGE_SIZE) -> CLIPImageProcessor:
    return CLIPImageProcessor(size=side, crop_size=side)


# ------------------------------------------------------------------------------------- one builder per model


def build_tiny_pipeline() -> StableDiffusionImageVariationPipeline:
    """`sd`: tiny components shaped like SD's image-variation model (kept exactly as sd_tiny has always built them,
    so that sd_tiny's images do not change)."""
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
    return assemble_pipeline(unet, tiny_vae(), tiny_image_encoder(), CLIP_IMAGE_SIZE)


def assemble_pipeline(
    unet: UNet2DConditionModel, vae: AutoencoderKL, image_encoder: CLIPVisionModelWithProjection, clip_size: int
) -> StableDiffusionImageVariationPipeline:
    """The image-variation pipeline around given networks, with SD v1's scheduler, a CLIP processor for
    `clip_size`, and no safety checker."""
    return StableDiffusionImageVariationPipeline(
        vae=vae,
        image_encoder=image_encoder,
        unet=unet,
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=clip_processor(clip_size),
        requires_safety_checker=False,
    )


def build_vae(folder: Path) -> None:
    """`vae`: a tiny AutoencoderKL in the subfolder `vae`, as it sits in an SD repository."""
    tiny_vae().save_pretrained(folder / "vae")


def build_img2img(folder: Path) -> None:
    """`img2img`: a tiny SD v1 text-to-image repository; AutoPipelineForImage2Image picks its img2img pipeline."""
    StableDiffusionPipeline(
        vae=tiny_vae(),
        text_encoder=tiny_text_encoder(),
        tokenizer=tiny_tokenizer(),
        unet=tiny_unet(),
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)


def build_inpaint(folder: Path) -> None:
    """`inpaint`: a tiny SD inpainting repository: its UNet takes 9 channels (noisy latents, mask, masked image)."""
    StableDiffusionInpaintPipeline(
        vae=tiny_vae(),
        text_encoder=tiny_text_encoder(),
        tokenizer=tiny_tokenizer(),
        unet=tiny_unet(in_channels=9),
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder)


def build_unclip(folder: Path) -> None:
    """`unclip`: a tiny Stable unCLIP img2img repository: the noised CLIP image embedding (and its noise level's
    embedding, hence twice the width) enters the UNet as a class embedding."""
    StableUnCLIPImg2ImgPipeline(
        feature_extractor=clip_processor(),
        image_encoder=tiny_image_encoder(),
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=EMBED),
        image_noising_scheduler=unclip_noising_scheduler(),
        tokenizer=tiny_tokenizer(),
        text_encoder=tiny_text_encoder(),
        unet=tiny_unet(class_embed_type="projection", projection_class_embeddings_input_dim=2 * EMBED),
        scheduler=unclip_scheduler(),
        vae=tiny_vae(),
    ).save_pretrained(folder)


def build_kandinsky(folder: Path) -> None:
    """`kandinsky`: the Kandinsky 2.2 decoder (UNet on image embeddings, MoVQ) at the root, and the prior's image
    encoder and processor in `image_encoder` / `image_processor`, as in kandinsky-2-2-prior."""
    torch.manual_seed(INIT_SEED)
    unet = UNet2DConditionModel(
        in_channels=4,
        out_channels=8,
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64),
        layers_per_block=1,
        encoder_hid_dim=EMBED,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=EMBED,
        attention_head_dim=4,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
    )
    torch.manual_seed(INIT_SEED)
    movq = VQModel(
        block_out_channels=[32, 32, 64, 64],
        down_block_types=["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"],
        up_block_types=["AttnUpDecoderBlock2D"] + ["UpDecoderBlock2D"] * 3,
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        vq_embed_dim=4,
    )
    scheduler = kandinsky_scheduler()
    KandinskyV22Pipeline(unet=unet, scheduler=scheduler, movq=movq).save_pretrained(folder)
    tiny_image_encoder().save_pretrained(folder / "image_encoder")
    clip_processor().save_pretrained(folder / "image_processor")


def build_sd(folder: Path) -> None:
    build_tiny_pipeline().save_pretrained(folder)
