"""GPU checks of the diffusers base (marked `gpu`: not part of `make test`, which runs on CPU): compile=true with
CUDA graphs at every guidance scale, and batch_size=auto's choice fitting in the real GPU's memory. On a CUDA machine:

    .venv/bin/pytest -q -m gpu tests/test_zoo_gpu.py     # a few minutes: tiny twins, then full-size SD at 512 px
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from omegaconf import open_dict

from aigen.factory import build
from aigen.generators import diffusers_base
from conftest import ROOT, compose_config

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TWINS = ["sd_tiny", "img2img_tiny", "inpaint_tiny", "unclip_tiny", "kandinsky_tiny"]


def twin(name: str, guidance: float, compile: bool):
    cfg = compose_config(f"generator={name}", "generator.device=cuda", "generator.dtype=float32")
    with open_dict(cfg):
        cfg.generator.guidance_scale = guidance
        cfg.generator.compile = compile
        if "steps" in cfg.generator:
            cfg.generator.steps = 8 if name != "img2img_tiny" else 16  # many steps: scheduler history matters
    generator = build(cfg.generator)
    generator.load()
    return generator


def photos(generator, count: int = 3) -> list:
    import skimage.data  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    sources = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    return [generator.prepare(Image.fromarray(source).resize((96, 96))) for source in sources[:count]]


@pytest.mark.parametrize("guidance", [1.0, 3.0])
@pytest.mark.parametrize("name", TWINS)
def test_compile_with_cuda_graphs_matches_eager_at_every_guidance(name, guidance):
    """guidance <= 1 has no classifier-free guidance: the scheduler keeps the UNet's own output across steps,
    which a CUDA-graph replay overwrites unless the output is cloned (gpu.with_fresh_outputs)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    eager = twin(name, guidance, compile=False)
    seeds = [1, 2, 3]
    reference = [np.asarray(v.image, dtype=np.int16) for v in eager.generate(photos(eager), seeds)]
    compiled = twin(name, guidance, compile=True)
    for _ in range(2):  # the second batch replays the recorded graphs
        images = [np.asarray(v.image, dtype=np.int16) for v in compiled.generate(photos(compiled), seeds)]
        for got, want in zip(images, reference, strict=True):
            difference = np.abs(got - want)
            assert difference.mean() < 1.0 and difference.max() <= 16, (name, guidance, difference.max())


def test_auto_batch_size_fits_full_size_sd_at_512():
    """batch_size=auto on this GPU, the full-size SD image-variation architecture (random weights), one batch of
    2 steps at 512 px: the peak stays below what was free, and near the estimate."""
    sys.path.insert(0, str(ROOT))
    from benchmarks.gpu import full_size_pipeline  # noqa: PLC0415

    cfg = compose_config("generator=sd", "generator.device=cuda", "generator.steps=2")
    generator = build(cfg.generator)
    device = torch.device("cuda")
    torch.cuda.empty_cache()
    free = diffusers_base.free_cuda_bytes(device)
    batch = generator.default_batch_size()
    with torch.device(device):
        pipe = full_size_pipeline()
    generator.weights = "random"
    generator.attach(pipe.to(dtype=torch.float16), device)
    torch.cuda.reset_peak_memory_stats()
    inputs = photos(generator, 1) * batch
    results = generator.generate(inputs, list(range(batch)))
    peak = torch.cuda.max_memory_allocated()
    fixed, per_image = generator.memory_estimate(torch.float16)
    print(f"batch {batch}: peak {peak / 2**30:.1f} GiB, estimate {(fixed + batch * per_image) / 2**30:.1f} GiB")
    assert len(results) == batch and peak < free
