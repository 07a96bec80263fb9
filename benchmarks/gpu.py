"""GPU: the full-size SD image-variation architecture (random weights), 512 px, guidance 3.

Compared in one run on one GPU: the original project's way (fp32, batch 1, PIL input through the pipeline's
feature extractor) vs the factory's generator (fp16, batches, tensor input, PyTorch SDPA), optionally with
`torch.compile` (compile time reported apart) and a faster scheduler (marked: it changes the images).
The fraction of the GPU's bf16 peak uses a FLOP count from torch.utils.flop_counter and a bf16 matmul measured
in the same run. Speed does not depend on weight values, so random weights measure the real model's speed.
`--tiny` runs the same code on tiny components (e.g. on a CPU) to check the script itself.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import skimage.data
import torch
from diffusers import (
    AutoencoderKL,
    DPMSolverMultistepScheduler,
    StableDiffusionImageVariationPipeline,
    UNet2DConditionModel,
)
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from aigen.generators.sd import SDImageVariation
from aigen.generators.sd_tiny import assemble_pipeline, build_tiny_pipeline
from aigen.report import markdown_table
from benchmarks.common import report


def full_size_pipeline() -> StableDiffusionImageVariationPipeline:
    """lambdalabs/sd-image-variations-diffusers' architecture: SD v1 UNet and VAE, CLIP ViT-L/14 image tower."""
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        cross_attention_dim=768,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=512,
    )
    image_encoder = CLIPVisionModelWithProjection(
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
    return assemble_pipeline(unet, vae, image_encoder, clip_size=224)


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
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda" and not args.tiny:
        print("no GPU here: nothing measured (use --tiny to check the script on the CPU)")
        return
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
    generator = SDImageVariation("random-weights", None, args.steps, 3.0, args.size, device=device.type)
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
        generator._pipe.unet = torch.compile(generator._pipe.unet, mode="reduce-overhead")
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


if __name__ == "__main__":
    main()
