"""GPU: the full-size SD image-variation architecture (random weights), 512 px, guidance 3; then the zoo.

Compared in one run on one GPU: the original project's way (fp32, batch 1, PIL input through the pipeline's
feature extractor) vs the factory's generator (fp16, batches, tensor input, PyTorch SDPA), optionally with
`torch.compile` (compile time reported apart) and a faster scheduler (marked: it changes the images).
The fraction of the GPU's bf16 peak uses a FLOP count from torch.utils.flop_counter and a bf16 matmul measured
in the same run. Speed does not depend on weight values, so random weights measure the real model's speed.
`--tiny` runs the same code on tiny components (e.g. on a CPU) to check the script itself.

The zoo table (`--zoo-only` for it alone, `--no-zoo` to skip it): every open generator's architecture built in
code from the real configs' shapes (random weights, no download), run through the generator class itself at its
default gen_size, steps and guidance, with batch_size=auto's choice on this GPU: images/s, peak memory, and
batch_size=auto's estimate of that peak next to it (the estimates in the generator classes are unmeasured until
this table says otherwise). The 2025-26 generators (SD 3.5, SDXL and its refiner and inpainting model, Z-Image,
Qwen-Image-Edit) are built from their published config.json shapes, initialised directly in their dtype on the GPU;
`--max-batch` caps batch_size=auto's choice for a short run.

The out-of-memory check (`--oom-only`, `--no-oom` to skip it) leaves only `--oom-free-gib` of real GPU memory
beside full-size SD's weights and asks for a batch far too large: the factory's batch caller must halve the batch
on each real out-of-memory error and still make every image. benchmarks/gpu_check.sh runs all of it in 8 minutes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import skimage.data
import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLQwenImage,
    DPMSolverMultistepScheduler,
    FlowMatchEulerDiscreteScheduler,
    KandinskyV22Pipeline,
    QwenImageEditPlusPipeline,
    QwenImageTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Img2ImgPipeline,
    StableDiffusionImageVariationPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableUnCLIPImg2ImgPipeline,
    UNet2DConditionModel,
    VQModel,
    ZImageImg2ImgPipeline,
    ZImageTransformer2DModel,
)
from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen3Config,
    Qwen3Model,
    T5Config,
    T5EncoderModel,
)

from aigen.factory.generation import BatchGenerator, CircuitBreaker, release_memory
from aigen.generators.base import Variation
from aigen.generators.diffusers_base import resolve_dtype
from aigen.generators.gpu import GIB, compile_module, free_cuda_bytes
from aigen.generators.qwen_processor import ImageOnlyQwenProcessor
from aigen.generators.sd import SDImageVariation
from aigen.generators.tiny import (
    assemble_pipeline,
    build_tiny_pipeline,
    kandinsky_scheduler,
    sd_scheduler,
    tiny_tokenizer,
    unclip_noising_scheduler,
    unclip_scheduler,
)
from aigen.generators.tiny_modern import qwen_scheduler, qwen_tokenizer, sdxl_scheduler, t5_tokenizer
from aigen.tables import markdown_table
from benchmarks.common import ROOT, report

# ------------------------------------------------------------ full-size architectures, from the real configs


def sd_unet(**config) -> UNet2DConditionModel:
    """SD v1's UNet (860M); SD 2.x's with cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20) and
    linear projections."""
    return UNet2DConditionModel(
        **{
            "sample_size": 64,
            "in_channels": 4,
            "out_channels": 4,
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            **config,
        }
    )


SD2_UNET = {"cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20), "use_linear_projection": True}


def sd_vae() -> AutoencoderKL:
    """SD's VAE (84M): sd-vae-ft-mse and the `vae` of SD 1.x / 2.x (SDXL's has the same shapes)."""
    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=512,
    )


def clip_vit_l14_image() -> CLIPVisionModelWithProjection:
    """CLIP ViT-L/14's image tower (304M)."""
    return CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_attention_heads=16,
            num_hidden_layers=24,
            patch_size=14,
            image_size=224,
            projection_dim=768,
        )
    )


def clip_text_config(width: int, layers: int, heads: int, act: str, **extra) -> CLIPTextConfig:
    """A CLIP text tower's config: 49408 tokens, 77 positions, MLP 4x its width."""
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=width,
        intermediate_size=4 * width,
        num_attention_heads=heads,
        num_hidden_layers=layers,
        max_position_embeddings=77,
        hidden_act=act,
        **extra,
    )


def clip_text(width: int, layers: int, heads: int, act: str) -> CLIPTextModel:
    """SD 1.x's CLIP ViT-L/14 text encoder (768 wide, 12 layers) or SD 2.x's OpenCLIP ViT-H (1024, 23 layers)."""
    return CLIPTextModel(clip_text_config(width, layers, heads, act))


def full_size_pipeline() -> StableDiffusionImageVariationPipeline:
    """lambdalabs/sd-image-variations-diffusers' architecture: SD v1 UNet and VAE, CLIP ViT-L/14 image tower."""
    return assemble_pipeline(sd_unet(), sd_vae(), clip_vit_l14_image(), clip_size=224)


def full_size_img2img() -> StableDiffusionImg2ImgPipeline:
    """stable-diffusion-v1-5 as AutoPipelineForImage2Image loads it (the tokenizer is the offline byte-level one:
    speed does not depend on the vocabulary)."""
    return StableDiffusionImg2ImgPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(768, 12, 12, "quick_gelu"),
        tokenizer=tiny_tokenizer(),
        unet=sd_unet(),
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def full_size_inpaint() -> StableDiffusionInpaintPipeline:
    """stable-diffusion-2-inpainting: SD 2's 9-channel UNet, OpenCLIP ViT-H text encoder."""
    return StableDiffusionInpaintPipeline(
        vae=sd_vae(),
        text_encoder=clip_text(1024, 23, 16, "gelu"),
        tokenizer=tiny_tokenizer(),
        unet=sd_unet(in_channels=9, **SD2_UNET),
        scheduler=sd_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def full_size_unclip() -> StableUnCLIPImg2ImgPipeline:
    """stable-diffusion-2-1-unclip-small: SD 2.1's UNet with the noised ViT-L/14 image embedding (768) and its
    noise level's embedding (768) as a 1536-wide class embedding; DDIM with v-prediction."""
    return StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(size=224, crop_size=224),
        image_encoder=clip_vit_l14_image(),
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=768),
        image_noising_scheduler=unclip_noising_scheduler(),
        tokenizer=tiny_tokenizer(),
        text_encoder=clip_text(1024, 23, 16, "gelu"),
        unet=sd_unet(
            sample_size=96, class_embed_type="projection", projection_class_embeddings_input_dim=1536, **SD2_UNET
        ),
        scheduler=unclip_scheduler(),
        vae=sd_vae(),
    )


def full_size_kandinsky() -> tuple[KandinskyV22Pipeline, CLIPVisionModelWithProjection, CLIPImageProcessor]:
    """kandinsky-2-2-decoder (UNet on image embeddings, 1.22B; MoVQ, 67M) and kandinsky-2-2-prior's CLIP ViT-bigG/14
    image tower (1280-wide embeddings, 1.84B).

    Checked against the sources (the shapes first written here from memory were right): the UNet's and MoVQ's
    shapes are diffusers' own conversion script for Kandinsky (huggingface/diffusers
    scripts/convert_kandinsky_to_diffusers.py, UNET_CONFIG and MOVQ_CONFIG), whose 2.1 UNet 2.2 keeps with only
    its conditioning changed from text+image to the image embedding alone (`addition_embed_type="image"`,
    `encoder_hid_dim_type="image_proj"`, 1280 wide: the bigG embedding, as diffusers'
    tests/pipelines/kandinsky2_2/test_kandinsky.py builds it small); the parameter counts match the model card
    (ai-forever/Kandinsky_2.1 README: "Latent Diffusion U-Net - 1.22B", "MoVQ encoder/decoder - 67M"): see
    tests/test_modern.py, which counts them on the meta device. A UNet with block_out_channels (384, 768, 1536,
    3072), as some third-party code has it, would have 3.3B."""
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=8,
        block_out_channels=(384, 768, 1152, 1536),
        layers_per_block=3,
        down_block_types=("ResnetDownsampleBlock2D",) + ("SimpleCrossAttnDownBlock2D",) * 3,
        up_block_types=("SimpleCrossAttnUpBlock2D",) * 3 + ("ResnetUpsampleBlock2D",),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        encoder_hid_dim=1280,
        encoder_hid_dim_type="image_proj",
        addition_embed_type="image",
        addition_embed_type_num_heads=64,
        cross_attention_dim=768,
        attention_head_dim=64,
        resnet_time_scale_shift="scale_shift",
    )
    movq = VQModel(
        block_out_channels=(128, 256, 256, 512),
        down_block_types=("DownEncoderBlock2D",) * 3 + ("AttnDownEncoderBlock2D",),
        up_block_types=("AttnUpDecoderBlock2D",) + ("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=2,
        norm_num_groups=32,
        norm_type="spatial",
        num_vq_embeddings=16384,
        vq_embed_dim=4,
    )
    scheduler = kandinsky_scheduler()
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=1664,
            intermediate_size=8192,
            num_attention_heads=16,
            num_hidden_layers=48,
            patch_size=14,
            image_size=224,
            projection_dim=1280,
            hidden_act="gelu",
        )
    )
    decoder = KandinskyV22Pipeline(unet=unet, scheduler=scheduler, movq=movq)
    return decoder, image_encoder, CLIPImageProcessor(size=224, crop_size=224)


# --------------------------------------------------------------- the 2025-26 generators, from their config.json


def clip_text_with_projection(width: int, layers: int, heads: int, act: str) -> CLIPTextModelWithProjection:
    """CLIP ViT-L/14's text encoder (768 wide, 12 layers) or OpenCLIP ViT-bigG/14's (1280, 32 layers, 20 heads),
    with their projections: SDXL's second text encoder and both of SD 3.5's."""
    return CLIPTextModelWithProjection(clip_text_config(width, layers, heads, act, projection_dim=width))


def flux_vae(shift: float, scale: float) -> AutoencoderKL:
    """The 16-channel autoencoder of SD 3.5 (shift 0.0609, scale 1.5035) and of FLUX / Z-Image (0.1159, 0.3611):
    SD's shapes with 16 latent channels and no quant convs (their vae/config.json)."""
    return AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=16,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=shift,
        scaling_factor=scale,
    )


def full_size_sd35() -> StableDiffusion3Img2ImgPipeline:
    """stable-diffusion-3.5-medium: MMDiT-X (transformer/config.json: 24 layers of 24 heads x 64, dual attention
    in layers 0-12, RMS q/k norm, pos_embed_max_size 384, caption projection 1536), CLIP-L and CLIP-G with
    projections, T5-XXL's encoder (text_encoder_3/config.json: 24 layers, d_model 4096, d_ff 10240, 64 heads,
    gated GELU). The tokenizers are the offline ones: speed does not depend on the vocabulary."""
    transformer = SD3Transformer2DModel(
        sample_size=128,
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=24,
        attention_head_dim=64,
        num_attention_heads=24,
        joint_attention_dim=4096,
        caption_projection_dim=1536,
        pooled_projection_dim=2048,
        pos_embed_max_size=384,
        dual_attention_layers=tuple(range(13)),
        qk_norm="rms_norm",
    )
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=32128,
            d_model=4096,
            d_ff=10240,
            d_kv=64,
            num_heads=64,
            num_layers=24,
            feed_forward_proj="gated-gelu",
        )
    )
    return StableDiffusion3Img2ImgPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=flux_vae(shift=0.0609, scale=1.5035),
        text_encoder=clip_text_with_projection(768, 12, 12, "quick_gelu"),
        tokenizer=tiny_tokenizer(),
        text_encoder_2=clip_text_with_projection(1280, 32, 20, "gelu"),
        tokenizer_2=tiny_tokenizer(),
        text_encoder_3=t5,
        tokenizer_3=t5_tokenizer(),
    )


def sdxl_unet(in_channels: int = 4) -> UNet2DConditionModel:
    """stable-diffusion-xl-base-1.0's UNet (unet/config.json, 2.6B): three levels, 1/2/10 transformer layers,
    2048-wide cross-attention (both text encoders side by side), 6 size/crop numbers x 256 + the pooled 1280 as
    its extra embedding (2816); the inpainting checkpoint's takes 9 channels."""
    return UNet2DConditionModel(
        sample_size=128,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=(320, 640, 1280),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,
    )


def sdxl_vae() -> AutoencoderKL:
    """SDXL's VAE: SD's shapes, its own scaling, decoded in float32 (force_upcast)."""
    vae = sd_vae()
    vae.register_to_config(scaling_factor=0.13025, force_upcast=True)
    return vae


def sdxl_text_encoders() -> dict:
    return {
        "text_encoder": clip_text(768, 12, 12, "quick_gelu"),
        "tokenizer": tiny_tokenizer(),
        "text_encoder_2": clip_text_with_projection(1280, 32, 20, "gelu"),
        "tokenizer_2": tiny_tokenizer(),
    }


def full_size_sdxl() -> StableDiffusionXLImg2ImgPipeline:
    """stable-diffusion-xl-base-1.0 as StableDiffusionXLImg2ImgPipeline loads it."""
    return StableDiffusionXLImg2ImgPipeline(
        vae=sdxl_vae(), unet=sdxl_unet(), scheduler=sdxl_scheduler(), **sdxl_text_encoders()
    )


def full_size_sdxl_refiner() -> StableDiffusionXLImg2ImgPipeline:
    """stable-diffusion-xl-refiner-1.0 (unet/config.json, 2.3B): four levels of 384-1536 channels, 4 transformer
    layers each in the middle two, 1280-wide cross-attention (bigG only), 5 time ids (aesthetic score) x 256 +
    1280 (2560)."""
    unet = UNet2DConditionModel(
        sample_size=128,
        in_channels=4,
        out_channels=4,
        block_out_channels=(384, 768, 1536, 1536),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=4,
        attention_head_dim=(6, 12, 24, 24),
        cross_attention_dim=1280,
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2560,
    )
    return StableDiffusionXLImg2ImgPipeline(
        vae=sdxl_vae(),
        unet=unet,
        scheduler=sdxl_scheduler(),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=clip_text_with_projection(1280, 32, 20, "gelu"),
        tokenizer_2=tiny_tokenizer(),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    )


def full_size_sdxl_inpaint() -> StableDiffusionXLInpaintPipeline:
    """diffusers/stable-diffusion-xl-1.0-inpainting-0.1: SDXL base with a 9-channel UNet."""
    return StableDiffusionXLInpaintPipeline(
        vae=sdxl_vae(), unet=sdxl_unet(in_channels=9), scheduler=sdxl_scheduler(), **sdxl_text_encoders()
    )


def full_size_zimage() -> ZImageImg2ImgPipeline:
    """Tongyi-MAI/Z-Image-Turbo: the S3-DiT (transformer/config.json: dim 3840, 30 layers + 2 refiner layers, 30
    heads, caption width 2560, RoPE axes 32/48/48 over 1536/512/512), Qwen3-4B's text model (text_encoder/
    config.json: 36 layers, 2560 wide, 32 heads of 128, 8 KV heads, MLP 9728), FLUX's autoencoder."""
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=3840,
        n_layers=30,
        n_refiner_layers=2,
        n_heads=30,
        n_kv_heads=30,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=2560,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[32, 48, 48],
        axes_lens=[1536, 512, 512],
    )
    text_encoder = Qwen3Model(
        Qwen3Config(
            vocab_size=151936,
            hidden_size=2560,
            intermediate_size=9728,
            num_hidden_layers=36,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=128,
            max_position_embeddings=40960,
            rope_theta=1000000.0,
        )
    )
    return ZImageImg2ImgPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=flux_vae(shift=0.1159, scale=0.3611),
        text_encoder=text_encoder,
        tokenizer=qwen_tokenizer(),
        transformer=transformer,
    )


def full_size_qwen_edit() -> QwenImageEditPlusPipeline:
    """Qwen/Qwen-Image-Edit-2509: the MMDiT (transformer/config.json: 60 layers of 24 heads x 128, 3584-wide text,
    RoPE axes 16/56/56; 20B), Qwen-Image's causal 3D autoencoder (vae/config.json: base 96, multipliers 1/2/4/4,
    2 res blocks, 16 channels) and Qwen2.5-VL-7B (text_encoder/config.json: 28 layers, 3584 wide, 28 heads,
    4 KV heads, MLP 18944; its vision tower 32 layers, 1280 wide, 16 heads, MLP 3420, full attention in layers
    7/15/23/31, windows of 112)."""
    tokenizer = qwen_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids
    text_encoder = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(
            text_config={
                "vocab_size": 152064,
                "hidden_size": 3584,
                "intermediate_size": 18944,
                "num_hidden_layers": 28,
                "num_attention_heads": 28,
                "num_key_value_heads": 4,
                "max_position_embeddings": 128000,
                "rope_scaling": {"mrope_section": [16, 24, 24], "rope_type": "default", "type": "default"},
                "rope_theta": 1000000.0,
            },
            vision_config={
                "depth": 32,
                "hidden_size": 1280,
                "intermediate_size": 3420,
                "num_heads": 16,
                "out_hidden_size": 3584,
                "window_size": 112,
                "fullatt_block_indexes": [7, 15, 23, 31],
            },
            image_token_id=token_id("<|image_pad|>"),
            video_token_id=token_id("<|video_pad|>"),
            vision_start_token_id=token_id("<|vision_start|>"),
            vision_end_token_id=token_id("<|vision_end|>"),
        )
    )
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=64,
        out_channels=16,
        num_layers=60,
        attention_head_dim=128,
        num_attention_heads=24,
        joint_attention_dim=3584,
        guidance_embeds=False,
        axes_dims_rope=(16, 56, 56),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True]
    )
    return QwenImageEditPlusPipeline(
        scheduler=qwen_scheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=ImageOnlyQwenProcessor(image_processor=Qwen2VLImageProcessorPil(), tokenizer=tokenizer),
        transformer=transformer,
    )


# generator config -> what its real model is, built in code
ZOO = {
    "sd": full_size_pipeline,
    "vae": sd_vae,
    "img2img": full_size_img2img,
    "inpaint": full_size_inpaint,
    "unclip": full_size_unclip,
    "kandinsky": full_size_kandinsky,
    "sd35": full_size_sd35,
    "sdxl": full_size_sdxl,
    "sdxl_refiner": full_size_sdxl_refiner,
    "sdxl_inpaint": full_size_sdxl_inpaint,
    "zimage": full_size_zimage,
    "qwen_edit": full_size_qwen_edit,
}
# What each architecture has, in millions of parameters, as published (model cards, papers) or as the
# published checkpoint holds: tests/test_modern.py builds each on the meta device and compares (within 3%).
PUBLISHED_MILLIONS = {
    ("sd", "unet"): 860,  # SD v1 (Rombach et al.)
    ("kandinsky", "unet"): 1220,  # "Latent Diffusion U-Net - 1.22B" (Kandinsky 2.1/2.2 model cards)
    ("kandinsky", "movq"): 67,  # "MoVQ encoder/decoder - 67M"
    ("sd35", "transformer"): 2470,  # SD 3.5 medium's MMDiT-X: "2.5 billion parameters" (model card)
    ("sdxl", "unet"): 2567,  # SDXL base's UNet (Podell et al.: 2.6B)
    ("zimage", "transformer"): 6150,  # Z-Image: "6B" (model card; 6.15B in its paper)
    ("qwen_edit", "transformer"): 20430,  # Qwen-Image's MMDiT: "20B" (technical report)
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bf16_matmul_tflops(device: torch.device, n: int, repeats: int = 20) -> float:
    """The ceiling: TFLOP/s of a large bf16 matmul on this device."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e12


def images_per_second(call, batch: int, device: torch.device, runs: int) -> float:
    call()  # warm-up (and, with torch.compile, the first compiled shapes)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(runs):
        call()
    synchronize(device)
    return batch * runs / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random components (checks the script on a CPU)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile(unet, reduce-overhead)")
    parser.add_argument("--append", action="store_true", help="append the table to BENCHMARKS.md")
    parser.add_argument("--no-zoo", action="store_true", help="skip the zoo table")
    parser.add_argument("--zoo-only", action="store_true", help="only the zoo table")
    parser.add_argument("--zoo-runs", type=int, default=1, help="timed batches per zoo generator")
    parser.add_argument("--only", nargs="*", default=list(ZOO), help="zoo generators to measure")
    parser.add_argument("--max-batch", type=int, default=None, help="cap the zoo's batch_size=auto (a short run)")
    parser.add_argument("--oom-only", action="store_true", help="only the out-of-memory check")
    parser.add_argument("--no-oom", action="store_true", help="skip the out-of-memory check")
    parser.add_argument("--oom-batch", type=int, default=64, help="the batch the out-of-memory check starts at")
    parser.add_argument("--oom-free-gib", type=float, default=3.0, help="GPU memory left free beside the weights")
    args = parser.parse_args(argv)
    unknown = set(args.only) - set(ZOO)
    if unknown:
        parser.error(f"--only: no full-size architecture for {', '.join(sorted(unknown))} (known: {', '.join(ZOO)})")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.tiny:
        print("no GPU here: nothing measured (use --tiny to check the script on the CPU)")
        return
    if not (args.zoo_only or args.oom_only):
        sd_comparison(args, device)
    if not (args.no_zoo or args.oom_only):
        zoo_table(args, device)
    if not (args.no_oom or args.zoo_only):
        out_of_memory_table(args, device)


def sd_comparison(args: argparse.Namespace, device: torch.device) -> None:
    """The original project's way vs the factory's generator, on SD image variations."""
    half = torch.float16 if device.type == "cuda" else torch.float32
    build = build_tiny_pipeline if args.tiny else full_size_pipeline
    photo = Image.open(Path(skimage.data.__file__).parent / "astronaut.png").convert("RGB")
    kwargs = {"height": args.size, "width": args.size, "num_inference_steps": args.steps, "guidance_scale": 3.0}

    # 1. The ceiling and the work per image.
    peak = bf16_matmul_tflops(device, 256 if args.tiny else 8192)
    torch.manual_seed(0)
    original = build().to(device)  # fp32, as the original project ran it
    original.set_progress_bar_config(disable=True)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        original(photo, **kwargs)
    tflop_per_image = counter.get_total_flops() / 1e12

    # 2. The original's way: fp32, batch 1, PIL input.
    rows = []

    def measure(name: str, call, batch: int, note: str = "") -> None:
        with torch.inference_mode():
            rate = images_per_second(call, batch, device, args.runs)
        rows.append([name, batch, f"{rate:.3f}", f"{tflop_per_image * rate / peak:.1%}", note])

    measure("original: fp32, batch 1, PIL input", lambda pipe=original: pipe(photo, **kwargs), 1)
    del original
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # 3. The factory's generator: half precision, a batch, tensor input, SDPA (diffusers' default attention).
    generator = SDImageVariation(
        "random-weights", None, args.steps, 3.0, args.size, device=device.type, weights="random"
    )
    generator._pipe = build().to(device, half)
    generator._pipe.set_progress_bar_config(disable=True)
    inputs = [generator.prepare(photo)] * args.batch
    seeds = list(range(args.batch))
    measure(
        f"factory: {str(half).split('.')[-1]}, batch {args.batch}",
        lambda: generator.generate(inputs, seeds),
        args.batch,
    )

    if args.compile:
        started = time.perf_counter()
        compile_module(generator._pipe.unet, device)  # the factory's compile=true: CUDA graphs, cloned outputs
        with torch.inference_mode():
            generator.generate(inputs, seeds)
        synchronize(device)
        compile_seconds = time.perf_counter() - started
        measure(
            f"factory + torch.compile(unet), batch {args.batch}",
            lambda: generator.generate(inputs, seeds),
            args.batch,
            f"compile + first batch {compile_seconds:.0f} s, excluded",
        )

    # 4. A faster scheduler: fewer UNet calls per image, but DIFFERENT images than PNDM's 50 steps.
    generator._pipe.scheduler = DPMSolverMultistepScheduler.from_config(generator._pipe.scheduler.config)
    generator.steps = max(1, args.steps // 2)
    measure(
        f"factory + DPM-Solver++ {generator.steps} steps, batch {args.batch}",
        lambda: generator.generate(inputs, seeds),
        args.batch,
        "CHANGES THE OUTPUT (not the default); % of peak uses the 50-step FLOP count, so it overstates",
    )

    baseline = float(rows[0][2])
    for row in rows:
        row.insert(3, f"{float(row[2]) / baseline:.1f}x")
    report(
        f"GPU: {'TINY components (script check)' if args.tiny else 'full-size SD image variations'}, "
        f"{args.size} px, {args.steps} steps, guidance 3",
        markdown_table(["variant", "batch", "images/s", "vs original", "of bf16 peak", "note"], rows),
        [
            f"work per image (FlopCounterMode, whole pipeline call at batch 1): {tflop_per_image:.2f} TFLOP",
            f"bf16 matmul measured in this run: {peak:.0f} TFLOP/s; the floor is "
            f"{tflop_per_image / peak:.3f} s per image",
            "random weights: speed does not depend on weight values",
        ],
        args.append,
    )


def zoo_generator(name: str, device: torch.device, tiny: bool):
    """The generator as the factory builds it from conf/generator/<name>.yaml (the twin's with --tiny)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("config", overrides=[f"generator={name}_tiny" if tiny else f"generator={name}"])
    cfg.generator.device = device.type
    return instantiate(cfg.generator)


@contextmanager
def default_dtype(dtype: torch.dtype):
    """New parameters in `dtype`: a 20B model initialised in float32 first would need twice its memory."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def model_parts(name: str, generator) -> dict[str, torch.nn.Module]:
    """A generator's networks by name (for their parameter counts)."""
    pipe = generator._pipe
    if name == "vae":
        return {"vae": pipe}
    parts = {part: module for part, module in pipe.components.items() if isinstance(module, torch.nn.Module)}
    if name == "kandinsky":
        parts["image_encoder"] = generator._image_encoder
    return parts


def zoo_table(args: argparse.Namespace, device: torch.device) -> None:
    """Every zoo generator at its defaults, random weights: images/s, peak memory and batch_size=auto's estimate."""
    if args.tiny:
        os.environ.setdefault("AIGEN_CACHE", tempfile.mkdtemp(prefix="aigen-gpu-bench-"))
    photo = Image.open(Path(skimage.data.__file__).parent / "astronaut.png").convert("RGB").resize((512, 512))
    rows, notes = [], []
    for name in args.only:
        try:
            row, part_notes = zoo_row(name, args, device, photo)
        except Exception as error:  # noqa: BLE001 - one generator's failure is its row; the others still run
            row, part_notes = [name, f"FAILED: {type(error).__name__}: {str(error).strip()[:200]}"], []
        rows.append(row + [""] * (len(ZOO_COLUMNS) - len(row)))
        print("zoo row:", " | ".join(map(str, row)), flush=True)  # kept even if a time limit cuts the run
        notes += part_notes
        release_memory()  # the previous model's tens of GiB, reference cycles included, before the next one
    report(
        f"GPU zoo: {'TINY twins (script check)' if args.tiny else 'full-size architectures, random weights'}, "
        "each generator's defaults",
        markdown_table(ZOO_COLUMNS, rows),
        [
            "measured: " + ", ".join(row[0] for row in rows) + " (each generator class's own generate(), dtype auto)",
            "batch: batch_size=auto's choice from the free memory (its estimate at the batch run is the last "
            "column: adjust the estimates in the generator classes when the measured peak disagrees); "
            + (f"capped at --max-batch {args.max_batch} to keep the run short" if args.max_batch else "not capped"),
            "random weights: speed and memory do not depend on weight values",
            *notes,
        ],
        args.append,
    )


ZOO_COLUMNS = [
    "generator",
    "model (architecture)",
    "alignment",
    "gen_size",
    "steps",
    "batch (auto)",
    "images/s",
    "peak GiB",
    "auto's estimate GiB",
]


def zoo_row(name: str, args: argparse.Namespace, device: torch.device, photo: Image.Image) -> tuple[list, list]:
    """One generator's row of the zoo table, and its parameter counts."""
    generator = zoo_generator(name, device, args.tiny)
    auto = generator.default_batch_size() if not args.tiny else 2
    batch = min(auto, args.max_batch) if args.max_batch else auto
    dtype = resolve_dtype(generator.dtype, device, generator.auto_cuda_dtype)
    if args.tiny:
        generator.load()  # the twin, through from_pretrained
    else:
        torch.manual_seed(0)
        with torch.device(device), default_dtype(dtype):  # random init on the GPU, in the weights' dtype
            built = ZOO[name]()
        if name == "kandinsky":
            built, generator._image_encoder, generator._image_processor = built
        generator.attach(built, device)
    notes = [
        f"{name}.{part}: {sum(p.numel() for p in module.parameters()) / 1e6:.0f}M parameters"
        for part, module in model_parts(name, generator).items()
    ]
    inputs = [generator.prepare(photo)] * batch
    seeds = list(range(batch))
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    rate = images_per_second(lambda: generator.generate(inputs, seeds), batch, device, args.zoo_runs)
    peak = torch.cuda.max_memory_allocated() / GIB if device.type == "cuda" else float("nan")
    fixed, per_image = generator.memory_estimate(dtype)
    row = [
        name,
        generator.model,
        generator.alignment,
        generator.gen_size,
        getattr(generator, "steps", "-"),
        batch if batch == auto else f"{batch} (auto {auto})",
        f"{rate:.3f}",
        f"{peak:.1f}",
        f"{(fixed + batch * per_image) / GIB:.1f}",
    ]
    return row, notes


def out_of_memory_table(args: argparse.Namespace, device: torch.device) -> None:
    """The out-of-memory path on real memory: full-size SD image variations with only `--oom-free-gib` left free
    beside its weights (the rest held by a ballast tensor) and a batch far too large. The factory's batch caller
    (aigen.factory.generation.BatchGenerator) must halve the batch on each real CUDA out-of-memory error until it
    fits, and every image must still come out."""
    generator = zoo_generator("sd", device, args.tiny)
    generator.steps = 2  # the memory of a batch does not depend on the number of steps
    if args.tiny:
        generator.load()
    else:
        torch.manual_seed(0)
        with torch.device(device), default_dtype(torch.float16):
            generator.attach(full_size_pipeline(), device)
    photo = Image.open(Path(skimage.data.__file__).parent / "astronaut.png").convert("RGB")
    ballast = None
    if device.type == "cuda":
        torch.cuda.empty_cache()
        spare = free_cuda_bytes(device) - int(args.oom_free_gib * GIB)
        ballast = torch.empty(max(0, spare), dtype=torch.uint8, device=device)
    batcher = BatchGenerator(generator, args.oom_batch, CircuitBreaker(3))
    started = time.perf_counter()
    results = batcher([generator.prepare(photo)] * args.oom_batch, list(range(args.oom_batch)))
    seconds = time.perf_counter() - started
    del ballast
    made = sum(isinstance(result, Variation) for result in results)
    halvings = batcher.out_of_memory_sizes
    rows = [
        [
            args.oom_batch,
            f"{args.oom_free_gib:g}" if device.type == "cuda" else "n/a (CPU)",
            ", ".join(map(str, halvings)) or "none",
            batcher.batch_size,
            made,
            args.oom_batch - made,
            f"{seconds:.1f}",
        ]
    ]
    verdict = (
        "PASS: real out-of-memory errors halved the batch and every image came out"
        if halvings and made == args.oom_batch
        else "NOT EXERCISED: no out-of-memory error happened (raise --oom-batch or lower --oom-free-gib)"
        if not halvings
        else f"FAIL: {args.oom_batch - made} images were lost"
    )
    report(
        f"GPU out-of-memory path: {'TINY twin (script check)' if args.tiny else 'full-size SD image variations'}, "
        f"{generator.gen_size} px",
        markdown_table(
            ["batch asked", "GiB left free", "out of memory at", "batch it went on at", "made", "lost", "seconds"],
            rows,
        ),
        [verdict, "the batch caller is the factory's own (aigen.factory.generation.BatchGenerator)"],
        args.append,
    )


if __name__ == "__main__":
    main()
