"""Tiny RANDOM-weight twins of the 2025-26 generators (aigen.generators.modern), built offline like every twin in
aigen.generators.tiny: each builder saves a repository shaped like the real one (same pipeline class in its
model_index.json, same components and tokenizer kinds), which the generator loads back with `from_pretrained`.

Tokenizers are made here with no hub: CLIP's byte-level BPE (aigen.generators.tiny), a character-level Unigram
tokenizer for T5, and a byte-level BPE with Qwen's special tokens (and chat template) for the Qwen text encoders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLQwenImage,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    QwenImageEditPlusPipeline,
    QwenImageTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3InpaintPipeline,
    StableDiffusion3Pipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from transformers import (
    CLIPTextModel,
    CLIPTextModelWithProjection,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2Tokenizer,
    Qwen2VLImageProcessorPil,
    Qwen3Config,
    Qwen3Model,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

from aigen.generators.qwen_processor import ImageOnlyQwenProcessor
from aigen.generators.tiny import EMBED, INIT_SEED, byte_level_vocabulary, tiny_text_config, tiny_tokenizer, tiny_unet

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
# Qwen's chat format (what Z-Image's pipeline asks `apply_chat_template` for), without the tool-use branches.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ------------------------------------------------------------------------------------------------ tokenizers


def qwen_tokenizer() -> Qwen2Tokenizer:
    """Qwen's byte-level BPE without merges: the 256 byte stand-ins, then Qwen's special tokens."""
    vocabulary = {character: index for index, character in enumerate(list(byte_level_vocabulary())[:256])}
    for token in QWEN_SPECIAL_TOKENS:
        vocabulary[token] = len(vocabulary)
    tokenizer = Qwen2Tokenizer(vocab=vocabulary, merges=[], chat_template=QWEN_CHAT_TEMPLATE)
    tokenizer.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    return tokenizer


def t5_tokenizer() -> T5Tokenizer:
    """T5's Unigram (SentencePiece) tokenizer over single characters: pad, eos, unk, `▁` and printable ASCII."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -1.0)]
    pieces += [(chr(code), -2.0) for code in range(ord("!"), ord("~") + 1)]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


# ------------------------------------------------------------------------------------------ text encoders


def clip_with_projection() -> CLIPTextModelWithProjection:
    """SD3's and SDXL's second CLIP text encoder: its pooled, projected output conditions the denoiser."""
    torch.manual_seed(INIT_SEED)
    return CLIPTextModelWithProjection(tiny_text_config(projection_dim=EMBED))


def t5_encoder(width: int) -> T5EncoderModel:
    torch.manual_seed(INIT_SEED)
    config = T5Config(vocab_size=len(t5_tokenizer()), d_model=width, d_ff=37, d_kv=8, num_layers=2, num_heads=4)
    return T5EncoderModel(config)


# -------------------------------------------------------------------------------------------- SD 3.5


def sixteen_channel_vae(scaling_factor: float, shift_factor: float) -> AutoencoderKL:
    """The 16-channel autoencoder of SD3 and Z-Image (no quant convs), 8x as the real ones, with the model's own
    scaling and shift."""
    torch.manual_seed(INIT_SEED)
    return AutoencoderKL(
        block_out_channels=[32, 32, 32, 32],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=16,
        layers_per_block=1,
        norm_num_groups=8,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=shift_factor,
        scaling_factor=scaling_factor,
    )


def sd3_components(in_channels: int) -> dict:
    """SD 3.5's parts: an MMDiT, two CLIP text encoders (pooled width 2 x EMBED) and T5 (the joint width)."""
    joint = 2 * EMBED  # CLIP's two hidden states side by side are padded to T5's width
    torch.manual_seed(INIT_SEED)
    transformer = SD3Transformer2DModel(
        sample_size=8,
        patch_size=2,
        in_channels=in_channels,
        out_channels=16,
        num_layers=2,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=joint,
        caption_projection_dim=32,
        pooled_projection_dim=2 * EMBED,
    )
    return {
        "transformer": transformer,
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0),  # SD 3.5 medium's
        "vae": sixteen_channel_vae(scaling_factor=1.5035, shift_factor=0.0609),
        "text_encoder": clip_with_projection(),
        "tokenizer": tiny_tokenizer(),
        "text_encoder_2": clip_with_projection(),
        "tokenizer_2": tiny_tokenizer(),
        "text_encoder_3": t5_encoder(joint),
        "tokenizer_3": t5_tokenizer(),
    }


def build_sd35(folder: Path) -> None:
    """`sd35`: a tiny SD 3.5 text-to-image repository (as stable-diffusion-3.5-medium's model_index.json)."""
    StableDiffusion3Pipeline(**sd3_components(in_channels=16)).save_pretrained(folder)


def build_sd35_inpaint(folder: Path) -> None:
    """`sd35_inpaint`: an SD3 inpainting repository: its transformer takes 33 channels (noisy latents, masked image
    latents, mask)."""
    StableDiffusion3InpaintPipeline(**sd3_components(in_channels=33)).save_pretrained(folder)


# ---------------------------------------------------------------------------------------------- SDXL


def sdxl_scheduler() -> EulerDiscreteScheduler:
    """SDXL base's and refiner's scheduler."""
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )


def sdxl_vae() -> AutoencoderKL:
    torch.manual_seed(INIT_SEED)
    return AutoencoderKL(
        block_out_channels=[32, 32, 64, 64],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        scaling_factor=0.13025,
        force_upcast=True,  # SDXL's VAE overflows in float16: the pipeline decodes in float32
    )


def sdxl_unet(time_ids: int, cross_attention_dim: int, in_channels: int = 4):
    """SDXL's UNet: the pooled text embedding and `time_ids` size/crop (and aesthetic) numbers enter as extra
    embeddings (`text_time`), each number embedded in 8."""
    return tiny_unet(
        in_channels=in_channels,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 2),
        projection_class_embeddings_input_dim=time_ids * 8 + EMBED,
        cross_attention_dim=cross_attention_dim,
    )


def sdxl_text_encoders() -> dict:
    torch.manual_seed(INIT_SEED)
    return {
        "text_encoder": CLIPTextModel(tiny_text_config()),
        "tokenizer": tiny_tokenizer(),
        "text_encoder_2": clip_with_projection(),
        "tokenizer_2": tiny_tokenizer(),
    }


def build_sdxl(folder: Path) -> None:
    """`sdxl`: a tiny SDXL base repository (text-to-image, as stable-diffusion-xl-base-1.0)."""
    StableDiffusionXLPipeline(
        vae=sdxl_vae(),
        unet=sdxl_unet(time_ids=6, cross_attention_dim=2 * EMBED),
        scheduler=sdxl_scheduler(),
        **sdxl_text_encoders(),
    ).save_pretrained(folder)


def build_sdxl_refiner(folder: Path) -> None:
    """`sdxl_refiner`: a tiny SDXL refiner: only the second text encoder, and an aesthetic score among the 5
    time ids (as stable-diffusion-xl-refiner-1.0)."""
    StableDiffusionXLImg2ImgPipeline(
        vae=sdxl_vae(),
        unet=sdxl_unet(time_ids=5, cross_attention_dim=EMBED),
        scheduler=sdxl_scheduler(),
        text_encoder=None,
        tokenizer=None,
        text_encoder_2=clip_with_projection(),
        tokenizer_2=tiny_tokenizer(),
        requires_aesthetics_score=True,
        force_zeros_for_empty_prompt=False,
    ).save_pretrained(folder)


def build_sdxl_inpaint(folder: Path) -> None:
    """`sdxl_inpaint`: a tiny SDXL inpainting repository: its UNet takes 9 channels."""
    StableDiffusionXLInpaintPipeline(
        vae=sdxl_vae(),
        unet=sdxl_unet(time_ids=6, cross_attention_dim=2 * EMBED, in_channels=9),
        scheduler=sdxl_scheduler(),
        **sdxl_text_encoders(),
    ).save_pretrained(folder)


# ------------------------------------------------------------------------------------------- Z-Image


def build_zimage(folder: Path) -> None:
    """`zimage`: a tiny Z-Image repository: a single-stream DiT on a Qwen3 text encoder's hidden states, FLUX's
    16-channel autoencoder."""
    text_width = 16
    torch.manual_seed(INIT_SEED)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        qk_norm=True,
        cap_feat_dim=text_width,
        axes_dims=[8, 4, 4],
        axes_lens=[1024, 64, 64],
    )
    vae = sixteen_channel_vae(scaling_factor=0.3611, shift_factor=0.1159)
    tokenizer = qwen_tokenizer()
    torch.manual_seed(INIT_SEED)
    text_encoder = Qwen3Model(
        Qwen3Config(
            vocab_size=len(tokenizer),
            hidden_size=text_width,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=1024,
        )
    )
    ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),  # Z-Image-Turbo's
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    ).save_pretrained(folder)


# ------------------------------------------------------------------------------------- Qwen-Image-Edit


def qwen_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """Qwen-Image's: shifted by the image's sequence length (exponential time shift)."""
    return FlowMatchEulerDiscreteScheduler(
        base_image_seq_len=256,
        base_shift=math.log(3),
        max_image_seq_len=8192,
        max_shift=math.log(3),
        shift=1.0,
        shift_terminal=0.02,
        time_shift_type="exponential",
        use_dynamic_shifting=True,
    )


def build_qwen_edit(folder: Path) -> None:
    """`qwen_edit`: a tiny Qwen-Image-Edit-2509 repository: the MMDiT, Qwen-Image's causal 3D autoencoder (16x here,
    to keep the photo's 1024x1024 conditioning latents few on a CPU; 8x in the real one),
    and Qwen2.5-VL (a vision tower and a language model) that reads the photo and the instruction together."""
    text_width = 16
    torch.manual_seed(INIT_SEED)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=64,
        out_channels=16,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_width,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    torch.manual_seed(INIT_SEED)
    vae = AutoencoderKLQwenImage(
        base_dim=4,
        z_dim=16,
        dim_mult=[1, 2, 4, 8, 8],  # 16x rather than 8x: the pipeline encodes the photo at 1024x1024
        num_res_blocks=1,
        temperal_downsample=[False, True, True, True],
        latents_mean=[0.0] * 16,
        latents_std=[1.0] * 16,
    )
    tokenizer = qwen_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids
    torch.manual_seed(INIT_SEED)
    text_encoder = Qwen2_5_VLForConditionalGeneration(
        Qwen2_5_VLConfig(
            text_config={
                "vocab_size": len(tokenizer),
                "hidden_size": text_width,
                "intermediate_size": 16,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "num_key_value_heads": 2,
                "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
                "rope_theta": 1000000.0,
                "bos_token_id": token_id("<|endoftext|>"),
                "eos_token_id": token_id("<|im_end|>"),
            },
            vision_config={
                "depth": 2,
                "hidden_size": 16,
                "intermediate_size": 16,
                "num_heads": 2,
                "out_hidden_size": text_width,
            },
            image_token_id=token_id("<|image_pad|>"),
            video_token_id=token_id("<|video_pad|>"),
            vision_start_token_id=token_id("<|vision_start|>"),
            vision_end_token_id=token_id("<|vision_end|>"),
        )
    )
    processor = ImageOnlyQwenProcessor(image_processor=Qwen2VLImageProcessorPil(), tokenizer=tokenizer)
    QwenImageEditPlusPipeline(
        scheduler=qwen_scheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=processor,
        transformer=transformer,
    ).save_pretrained(folder)
    # Laid out as Qwen-Image-Edit-2509's `processor` folder (the image processor's own preprocessor_config.json
    # beside the tokenizer's files), and named in model_index.json by the real class (the generator loads it
    # image-only).
    (folder / "processor" / "processor_config.json").unlink()
    processor.image_processor.save_pretrained(folder / "processor")
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["processor"] = ["transformers", "Qwen2VLProcessor"]
    index_path.write_text(json.dumps(index, indent=2))
