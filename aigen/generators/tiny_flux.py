"""Tiny RANDOM-weight twins of the FLUX generators (aigen.generators.flux), built offline like every tiny twin.

Each builder writes a repository laid out as the real one (model_index.json and one folder per component), so
that the generator loads it through the same `from_pretrained` code. Shapes follow the real configs where the
pipelines depend on them (latent packing, the Fill transformer's input channels, Redux's 4096/768 text widths,
Klein's stacked Qwen3 layers 9, 18 and 27) and are tiny elsewhere. Tokenizers are made here: CLIP's byte-level one from
aigen.generators.tiny, a character-level T5 (Unigram) and a byte-level Qwen2 BPE with Qwen3's chat template.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
    FluxFillPipeline,
    FluxKontextPipeline,
    FluxPipeline,
    FluxPriorReduxPipeline,
    FluxTransformer2DModel,
)
from diffusers.pipelines.flux.modeling_flux import ReduxImageEncoder
from tokenizers import AddedToken
from transformers import (
    Qwen2TokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,
)

from aigen.generators.tiny import INIT_SEED, byte_level_vocabulary, tiny_text_encoder, tiny_tokenizer

EMBED = 32  # the tiny text width (CLIP's pooled output and T5's hidden states)
LATENT_CHANNELS = 4  # FLUX's autoencoders have 16 (FLUX.1) or 32 (FLUX.2); 4 keeps the twins small
VAE_SCALE = 8  # four autoencoder blocks: 8x down, as the real ones
PROMPT_LENGTH = 512  # FLUX.1 dev (T5) and FLUX.2 klein (Qwen3) pad every prompt to 512 tokens
# FluxPriorReduxPipeline without text encoders (as FLUX.1-Redux-dev ships) makes zero T5 embeddings 4096 wide and
# a zero pooled CLIP embedding 768 wide, whatever the model: the Redux twin keeps these two widths.
REDUX_T5_WIDTH = 4096
REDUX_CLIP_WIDTH = 768
KLEIN_TEXT_LAYERS = (9, 18, 27)  # the Qwen3 hidden states Flux2KleinPipeline stacks by default
KLEIN_TEXT_WIDTH = 16
# Qwen3's chat template as Flux2KleinPipeline uses it (one user turn, the generation prompt, thinking disabled).
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


# ------------------------------------------------------------------------------------------ shared tiny parts


def flux_scheduler() -> FlowMatchEulerDiscreteScheduler:
    """FLUX.1 dev's (and FLUX.2 klein's) flow-matching scheduler, resolution-dependent shift included."""
    return FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )


def flux_vae() -> AutoencoderKL:
    """FLUX.1's autoencoder layout (no quant convs, its shift and scale) at a tiny width."""
    torch.manual_seed(INIT_SEED)
    return AutoencoderKL(
        block_out_channels=[32, 32, 64, 64],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=LATENT_CHANNELS,
        shift_factor=0.1159,
        scaling_factor=0.3611,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def flux_transformer(in_channels: int, text_width: int = EMBED, pooled_width: int = EMBED) -> FluxTransformer2DModel:
    """One double and one single block; guidance embedded as in the dev models; out: the packed latent."""
    torch.manual_seed(INIT_SEED)
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=in_channels,
        out_channels=4 * LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=text_width,
        pooled_projection_dim=pooled_width,
        guidance_embeds=True,
        axes_dims_rope=[4, 4, 8],
    )


def t5_tokenizer() -> T5TokenizerFast:
    """A character-level T5 tokenizer (Unigram over printable ASCII), made offline; FLUX's length of 512."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(code), -3.0) for code in range(ord("!"), ord("~") + 1)]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=PROMPT_LENGTH)


def t5_encoder(vocab_size: int) -> T5EncoderModel:
    torch.manual_seed(INIT_SEED)
    return T5EncoderModel(T5Config(vocab_size=vocab_size, d_model=EMBED, d_kv=8, d_ff=37, num_layers=2, num_heads=4))


def flux_text_parts() -> dict:
    """CLIP (pooled) and T5 (sequence) text encoders with their tokenizers, as every FLUX.1 pipeline takes them."""
    tokenizer_2 = t5_tokenizer()
    return {
        "text_encoder": tiny_text_encoder(),
        "tokenizer": tiny_tokenizer(),
        "text_encoder_2": t5_encoder(len(tokenizer_2)),
        "tokenizer_2": tokenizer_2,
    }


def qwen_tokenizer() -> Qwen2TokenizerFast:
    """A byte-level Qwen2 BPE (no merges) with Qwen3's chat tokens and template, made offline."""
    vocabulary = {token: index for index, token in enumerate(list(byte_level_vocabulary())[:256])}
    tokenizer = Qwen2TokenizerFast(vocab=vocabulary, merges=[], model_max_length=PROMPT_LENGTH)
    tokenizer.add_tokens([AddedToken(token, special=True) for token in ("<|im_start|>", "<|im_end|>")])
    tokenizer.add_tokens(["<think>", "</think>"])
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    return tokenizer


# ------------------------------------------------------------------------------------- one builder per model


def build_flux_fill(folder: Path) -> None:
    """`flux_fill`: FLUX.1 Fill dev's layout. Its transformer takes the packed noisy latents, the packed latents
    of the masked photo, and the mask at full resolution folded into VAE_SCALE^2 channels, all 2x2-packed."""
    packed_latent = 4 * LATENT_CHANNELS
    FluxFillPipeline(
        scheduler=flux_scheduler(),
        vae=flux_vae(),
        transformer=flux_transformer(2 * packed_latent + 4 * VAE_SCALE**2),
        **flux_text_parts(),
    ).save_pretrained(folder)


def build_flux_kontext(folder: Path) -> None:
    """`flux_kontext`: FLUX.1 Kontext dev's layout (the photo's latents enter as extra tokens, not channels)."""
    FluxKontextPipeline(
        scheduler=flux_scheduler(),
        vae=flux_vae(),
        transformer=flux_transformer(4 * LATENT_CHANNELS),
        **flux_text_parts(),
    ).save_pretrained(folder)


def build_flux_redux(folder: Path) -> None:
    """`flux_redux`: FLUX.1 dev without its text encoders at the root (the Redux prior replaces them), and the
    FLUX.1 Redux dev prior (SigLIP image encoder, Redux image embedder) in `prior/`, as two repositories."""
    tokenizer_2 = t5_tokenizer()
    FluxPipeline(
        scheduler=flux_scheduler(),
        vae=flux_vae(),
        text_encoder=None,
        tokenizer=tiny_tokenizer(),
        text_encoder_2=None,
        tokenizer_2=tokenizer_2,
        transformer=flux_transformer(4 * LATENT_CHANNELS, REDUX_T5_WIDTH, REDUX_CLIP_WIDTH),
    ).save_pretrained(folder)
    torch.manual_seed(INIT_SEED)
    image_encoder = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=EMBED,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        )
    )
    torch.manual_seed(INIT_SEED)
    image_embedder = ReduxImageEncoder(redux_dim=EMBED, txt_in_features=REDUX_T5_WIDTH)
    FluxPriorReduxPipeline(
        image_encoder=image_encoder,
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
        image_embedder=image_embedder,
    ).save_pretrained(folder / "prior")


def build_flux2_klein(folder: Path) -> None:
    """`flux2_klein`: FLUX.2 klein 4B's layout: a Qwen3 text encoder whose hidden states 9, 18 and 27 are stacked
    (hence 28 tiny layers), FLUX.2's autoencoder (2x2 patches, batch-normed), distilled (no guidance)."""
    tokenizer = qwen_tokenizer()
    torch.manual_seed(INIT_SEED)
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer),
            hidden_size=KLEIN_TEXT_WIDTH,
            intermediate_size=16,
            num_hidden_layers=max(KLEIN_TEXT_LAYERS) + 1,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=PROMPT_LENGTH,
        )
    )
    torch.manual_seed(INIT_SEED)
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4 * LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=len(KLEIN_TEXT_LAYERS) * KLEIN_TEXT_WIDTH,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=False,
    )
    torch.manual_seed(INIT_SEED)
    vae = AutoencoderKLFlux2(
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    Flux2KleinPipeline(
        scheduler=flux_scheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=True,
    ).save_pretrained(folder)


# Registered in aigen.generators.tiny_registry's TINY_MODELS. Bump a version when a builder changes its weights.
