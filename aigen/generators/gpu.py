"""What a generator needs to know of a GPU: its free memory, the batch that fits (`batch_size=auto`), whether a
model fits at all, 8-bit weights (torchao), and compiling with CUDA graphs safely."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import diffusers

# batch_size=auto on a GPU: never more than this (larger batches stop paying once the GPU is saturated, and a
# failing batch is retried image by image), nor more than fits; 4 on a CPU, as before.
MAX_AUTO_BATCH = 64
CPU_BATCH = 4
GIB = 1024**3
CUDA_RESERVE_BYTES = 1 * GIB  # CUDA context, cuDNN/cuBLAS workspaces, the allocator's fragmentation
MEMORY_HEADROOM = 0.85  # use at most this share of what is free after the weights and the reserve
MIN_GIB_PER_IMAGE = 0.02  # an image's own pixels and latents, when its model's activations are not per image


# ---------------------------------------------------------------------------------------------- batch_size=auto


def free_cuda_bytes(device: torch.device) -> int:
    """Free memory on a CUDA device, in bytes (the one place that asks the driver, so tests can fake it)."""
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def too_big_for_the_gpu(name: str, weight_bytes: float, free_bytes: int, offload: str, quantize: str) -> str | None:
    """The one-line refusal when the weights a generator keeps on the GPU (estimated, with its offload and
    quantize) and the CUDA reserve exceed the free memory; None when they fit."""
    if weight_bytes + CUDA_RESERVE_BYTES <= free_bytes:
        return None
    return (
        f"{name} needs about {weight_bytes / GIB:.1f} GiB of GPU memory for its weights (an estimate, with "
        f"generator.offload={offload} generator.quantize={quantize}) but the GPU has {free_bytes / GIB:.1f} GiB "
        "free: set generator.offload=model (or sequential) and/or generator.quantize=int8 (or fp8)"
    )


def torchao_config(quantize: str) -> diffusers.TorchAoConfig:
    """diffusers' torchao config for weight-only 8-bit weights (int8, or fp8 for GPUs with fp8 units)."""
    import diffusers
    from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig

    return diffusers.TorchAoConfig({"int8": Int8WeightOnlyConfig, "fp8": Float8WeightOnlyConfig}[quantize]())


def torchao_installed() -> bool:
    return importlib.util.find_spec("torchao") is not None


def auto_batch_size(free_bytes: int, weight_bytes: float, bytes_per_image: float) -> int:
    """The largest batch whose estimated activations fit next to the weights, at least 1, at most MAX_AUTO_BATCH."""
    usable = (free_bytes - weight_bytes - CUDA_RESERVE_BYTES) * MEMORY_HEADROOM
    return max(1, min(MAX_AUTO_BATCH, int(usable // bytes_per_image)))


# ----------------------------------------------------------------------------------------------------- compile


def clone_outputs(value: object) -> object:
    """A copy of every tensor in a model output (tensor, tuple, list, dict or diffusers BaseOutput)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
        return type(value)(*(clone_outputs(item) for item in value))
    if isinstance(value, list | tuple):
        return type(value)(clone_outputs(item) for item in value)
    if isinstance(value, dict):  # BaseOutput is an OrderedDict whose fields are also attributes
        cloned = {key: clone_outputs(item) for key, item in value.items()}
        try:
            return type(value)(**cloned)
        except TypeError:
            return type(value)(cloned)
    return value


def with_fresh_outputs(forward: Callable, mark_step_begin: Callable[[], None]) -> Callable:
    """`forward` behind a guard for CUDA graphs: each call starts a new graph step and returns copies.

    A CUDA-graph replay (torch.compile mode="reduce-overhead") writes its outputs into the same static buffers
    every time, so an output kept across calls is silently overwritten by the next one. With classifier-free
    guidance the pipeline combines the two halves into a new tensor at once; without it (guidance_scale <= 1)
    the scheduler keeps the UNet's own output (PNDM's and DPM-Solver's history of past outputs) and would read
    stale values. Cloning costs one latent-sized copy per step and makes every guidance scale safe.
    """

    def fresh(*args, **kwargs):
        mark_step_begin()
        return clone_outputs(forward(*args, **kwargs))

    return fresh


def compile_module(module: torch.nn.Module, device: torch.device, compile_fn: Callable = torch.compile) -> None:
    """Compile `module.forward` in place (its config, dtype and device stay visible to the pipeline).
    On CUDA with CUDA graphs, behind `with_fresh_outputs`; elsewhere inductor's default mode (no graphs)."""
    if device.type == "cuda":
        compiled = compile_fn(module.forward, mode="reduce-overhead")
        module.forward = with_fresh_outputs(compiled, torch.compiler.cudagraph_mark_step_begin)
    else:
        module.forward = compile_fn(module.forward, mode="default")
