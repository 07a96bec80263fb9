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
this table says otherwise).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import skimage.data
import torch
from diffusers import (
    AutoencoderKL,
    DPMSolverMultistepScheduler,
    KandinskyV22Pipeline,
    StableDiffusionImageVariationPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableUnCLIPImg2ImgPipeline,
    UNet2DConditionModel,
    VQModel,
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
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from aigen.generators.diffusers_base import GIB, compile_module, resolve_dtype
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


def clip_text(width: int, layers: int, heads: int, act: str) -> CLIPTextModel:
    """SD 1.x's CLIP ViT-L/14 text encoder (768 wide, 12 layers) or SD 2.x's OpenCLIP ViT-H (1024, 23 layers)."""
    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=width,
            intermediate_size=4 * width,
            num_attention_heads=heads,
            num_hidden_layers=layers,
            max_position_embeddings=77,
            hidden_act=act,
        )
    )


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
    """kandinsky-2-2-decoder (UNet on image embeddings, 1.22B; MoVQ) and kandinsky-2-2-prior's CLIP ViT-bigG/14
    image tower (1280-wide embeddings), written from their published configs."""
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


# generator config -> what its real model is, built in code
ZOO = {
    "sd": full_size_pipeline,
    "vae": sd_vae,
    "img2img": full_size_img2img,
    "inpaint": full_size_inpaint,
    "unclip": full_size_unclip,
    "kandinsky": full_size_kandinsky,
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
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.tiny:
        print("no GPU here: nothing measured (use --tiny to check the script on the CPU)")
        return
    if not args.zoo_only:
        sd_comparison(args, device)
    if not args.no_zoo:
        zoo_table(args, device)


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


def zoo_table(args: argparse.Namespace, device: torch.device) -> None:
    """Every zoo generator at its defaults, random weights: images/s, peak memory and batch_size=auto's estimate."""
    if args.tiny:
        os.environ.setdefault("AIGEN_CACHE", tempfile.mkdtemp(prefix="aigen-gpu-bench-"))
    photo = Image.open(Path(skimage.data.__file__).parent / "astronaut.png").convert("RGB").resize((512, 512))
    rows, notes = [], []
    for name in args.only:
        generator = zoo_generator(name, device, args.tiny)
        batch = generator.default_batch_size() if not args.tiny else 2
        dtype = resolve_dtype(generator.dtype, device, generator.auto_cuda_dtype)
        if args.tiny:
            generator.load()  # the twin, through from_pretrained
        else:
            torch.manual_seed(0)
            with torch.device(device):  # random init on the GPU: seconds, not minutes
                built = ZOO[name]()
            if name == "kandinsky":
                built, generator._image_encoder, generator._image_processor = built
                generator._image_encoder.to(dtype)
            generator.attach(built.to(dtype=dtype), device)
        pipe = generator._pipe
        parts = {part: getattr(pipe, part, None) for part in ("unet", "text_encoder", "image_encoder", "vae", "movq")}
        if name == "vae":
            parts = {"vae": pipe}
        if name == "kandinsky":
            parts["image_encoder"] = generator._image_encoder
        for part, module in parts.items():
            if isinstance(module, torch.nn.Module):  # to check against the published parameter counts
                notes.append(f"{name}.{part}: {sum(p.numel() for p in module.parameters()) / 1e6:.0f}M parameters")
        inputs = [generator.prepare(photo)] * batch
        seeds = list(range(batch))
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        rate = images_per_second(lambda g=generator, i=inputs, s=seeds: g.generate(i, s), batch, device, args.zoo_runs)
        peak = torch.cuda.max_memory_allocated() / GIB if device.type == "cuda" else float("nan")
        fixed, per_image = generator.memory_estimate(dtype)
        estimate = (fixed + batch * per_image) / GIB
        steps = getattr(generator, "steps", "-")
        rows.append(
            [
                name,
                generator.model,
                generator.alignment,
                generator.gen_size,
                steps,
                batch,
                f"{rate:.3f}",
                f"{peak:.1f}",
                f"{estimate:.1f}",
            ]
        )
        del generator, pipe, inputs
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report(
        f"GPU zoo: {'TINY twins (script check)' if args.tiny else 'full-size architectures, random weights'}, "
        "each generator's defaults",
        markdown_table(
            [
                "generator",
                "model (architecture)",
                "alignment",
                "gen_size",
                "steps",
                "batch (auto)",
                "images/s",
                "peak GiB",
                "auto's estimate GiB",
            ],
            rows,
        ),
        [
            "measured: " + ", ".join(row[0] for row in rows) + " (each generator class's own generate(), dtype auto)",
            "batch: batch_size=auto's choice from the free memory (its estimate is the last column: adjust the "
            "estimates in the generator classes when the measured peak disagrees)",
            "random weights: speed and memory do not depend on weight values",
            *notes,
        ],
        args.append,
    )


if __name__ == "__main__":
    main()
