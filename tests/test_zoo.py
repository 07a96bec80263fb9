"""The generator zoo on CPU: every tiny twin end to end, loading through from_pretrained, one multirun over all
twins, sd unchanged by the move onto the shared diffusers base, one-line errors, batch_size=auto, compile."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import StableDiffusionImageVariationPipeline
from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput
from omegaconf import open_dict
from transformers import CLIPImageProcessor

from aigen.errors import UserError
from aigen.factory import build, make_dataset
from aigen.generators import diffusers_base, gpu
from aigen.generators.gpu import (
    GIB,
    MAX_AUTO_BATCH,
    clone_outputs,
    compile_module,
    with_fresh_outputs,
)
from aigen.generators.tiny_registry import ensure_tiny_model
from conftest import compose_config, file_bytes, manifest_rows, run_cli
from twin_checks import assert_twin_end_to_end, photo_square, samples_cfg

LIMIT = 3
TWINS = ["vae_tiny", "img2img_tiny", "inpaint_tiny", "unclip_tiny", "kandinsky_tiny"]
# What each twin's rows must carry besides the common keys: the settings that decide its pixels.
SETTINGS = {
    "vae_tiny": {"alignment": "pixel", "latent": "sample", "subfolder": "vae"},
    "img2img_tiny": {"alignment": "pixel", "strength": 0.5, "prompt": "", "negative_prompt": None, "steps": 4},
    "inpaint_tiny": {"alignment": "pixel", "strength": 1.0, "prompt": "", "guidance_scale": 7.5, "steps": 2},
    "unclip_tiny": {"alignment": "semantic", "noise_level": 0, "prompt": "", "guidance_scale": 10.0},
    "kandinsky_tiny": {"alignment": "semantic", "prior_model": "aigen/kandinsky-tiny-random", "steps": 2},
}
SCHEDULERS = {
    "img2img_tiny": "PNDMScheduler",
    "inpaint_tiny": "PNDMScheduler",
    "unclip_tiny": "DDIMScheduler",
    "kandinsky_tiny": "DDPMScheduler",
}


# ------------------------------------------------------------------------------ 1. each twin end to end


@pytest.mark.parametrize("twin", TWINS)
def test_tiny_twin_end_to_end(twin, tmp_path):
    """N pairs at 64 px with alignment and settings in every row; resume; same config twice gives the same
    bytes; another seed changes every AI image and no original."""
    assert_twin_end_to_end(twin, tmp_path, LIMIT, SETTINGS[twin], SCHEDULERS.get(twin))


def test_vae_mode_takes_no_seed(tmp_path):
    """latent=mode: the seed decides nothing, so it is not in the rows nor in the dir name, and seeds agree."""
    zero = make_dataset(samples_cfg("vae_tiny", tmp_path / "a", "limit=2", "generator.latent=mode")).dataset_dir
    one = make_dataset(
        samples_cfg("vae_tiny", tmp_path / "b", "limit=2", "generator.latent=mode", "seed=1")
    ).dataset_dir
    assert file_bytes(zero) == file_bytes(one)
    assert all("seed" not in row and row["latent"] == "mode" for row in manifest_rows(zero))
    cfg = compose_config("generator=vae", "generator.latent=mode")
    from aigen.identity import dataset_dir  # noqa: PLC0415

    assert dataset_dir(cfg, build(cfg.source), build(cfg.generator)).name == "indoor-vae-256-sd-vae-ft-mse-mode"


# ----------------------------------------------------------- 2. the real configs load a saved folder


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """Each tiny model saved once, then copied to a folder outside the cache: a stand-in for a local copy."""
    import os  # noqa: PLC0415

    root = tmp_path_factory.mktemp("local-models")
    folders = {}
    for name in ("sd", "vae", "img2img", "inpaint", "unclip", "kandinsky"):
        folders[name] = root / name
        shutil.copytree(ensure_tiny_model(name, os.environ["AIGEN_CACHE"]), folders[name])
    return folders


LOCAL_OVERRIDES = {
    "sd": ["generator.steps=2"],
    "vae": ["generator.subfolder=vae"],
    "img2img": ["generator.steps=4"],
    "inpaint": ["generator.steps=2"],
    "unclip": ["generator.steps=2"],
    "kandinsky": ["generator.steps=2", "generator.prior_model={folder}"],
}


@pytest.mark.parametrize("name", list(LOCAL_OVERRIDES))
def test_the_real_generator_loads_a_local_folder(name, saved_models):
    """The REAL config (not the twin) pointed at a folder: the same from_pretrained path a downloaded model takes."""
    folder = saved_models[name]
    overrides = [item.format(folder=folder) for item in LOCAL_OVERRIDES[name]]
    cfg = compose_config(f"generator={name}", f"generator.model={folder}", "generator.gen_size=64", *overrides)
    generator = build(cfg.generator)
    assert generator.weights == "pretrained" and generator.describe()["model"] == str(folder)
    generator.load()
    [variation] = generator.generate([generator.prepare(photo_square())], [7])
    assert variation.image.size == (64, 64)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (("generator=vae_tiny", "generator.model=/elsewhere"), "always loads its own aigen/vae-tiny-random at v1"),
        (("generator=vae_tiny", "generator.revision=v2"), "always loads its own aigen/vae-tiny-random at v1"),
        (("generator=kandinsky_tiny", "generator.prior_model=/nope"), "own prior aigen/kandinsky-tiny-random at v1;"),
        (("generator=kandinsky_tiny", "generator.prior_revision=v2"), "own prior aigen/kandinsky-tiny-random at v1;"),
        (("generator=flux_redux_tiny", "generator.prior_model=x/y"), "own prior aigen/flux-redux-tiny-random/prior"),
    ],
)
def test_a_tiny_twin_refuses_a_model_it_would_not_load(overrides, fragment):
    """Its rows would name a model (or prior) that made none of their pixels."""
    with pytest.raises(UserError, match=fragment):
        build(compose_config(*overrides).generator)
    build(compose_config(overrides[0]).generator)  # its own: fine


def test_a_hub_id_not_in_the_cache_is_one_line_naming_the_model(tmp_path):
    """Offline with an empty Hugging Face cache: each real generator stops before any work with one line naming
    its model and the way out; no dataset dir is made. (One multirun: Hydra goes on after a failed job.)"""
    out = tmp_path / "data"
    result = run_cli(
        "-m",
        "generator=vae,img2img,inpaint,unclip,kandinsky",
        "source=samples",
        "size=64",
        "logger=none",
        env={"HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1", "DATA_DIR": str(out)},
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    models = [
        "stabilityai/sd-vae-ft-mse",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "stabilityai/stable-diffusion-2-inpainting",
        "stabilityai/stable-diffusion-2-1-unclip-small",
        "kandinsky-community/kandinsky-2-2-decoder",
    ]
    assert len(lines) == len(models), result.stderr
    for line, model in zip(lines, models, strict=True):
        assert f"cannot load model '{model}' (revision main) (HF_HUB_OFFLINE is set" in line
        assert f"`hf download {model} --revision main`, or set generator.model=/path/to/a/local/copy" in line
    assert "Warning" not in result.stderr  # e.g. huggingface_hub's deprecation of an argument diffusers passes
    assert not out.exists()


def test_a_missing_prior_names_the_prior(saved_models, monkeypatch):
    """Kandinsky loads two repositories: the error names the one that failed and its own option."""
    cfg = compose_config(
        "generator=kandinsky", f"generator.model={saved_models['kandinsky']}", "generator.prior_model=org/prior"
    )
    generator = build(cfg.generator)
    message = generator.load_error(OSError("not found"), "org/prior", "main")
    assert "cannot load model 'org/prior' (revision main)" in message
    assert "set generator.prior_model=/path/to/a/local/copy" in message and "\n" not in message


@pytest.mark.parametrize("prior_revision", ["null", "v2"])
def test_a_prior_is_loaded_at_its_own_revision(prior_revision):
    """The prior is another repository: the base model's pinned commit is never asked of it."""
    overrides = ("generator.revision=0123abcd", f"generator.prior_revision={prior_revision}")
    cfg = compose_config("generator=kandinsky", "generator.prior_model=aigen-tests/no-such-prior", *overrides)
    generator = build(cfg.generator)
    with pytest.raises(UserError) as error:  # offline, never cached: the load error names what was asked for
        generator.load_prior(CLIPImageProcessor, None, subfolder="image_processor")
    expected = "main" if prior_revision == "null" else prior_revision
    assert f"cannot load model 'aigen-tests/no-such-prior' (revision {expected})" in str(error.value)
    assert "generator.prior_model=" in str(error.value)


def test_inpaint_refuses_a_plain_checkpoint(saved_models):
    """A 4-channel UNet with an all-zero mask only returns the VAE's reconstruction: refused in one line."""
    cfg = compose_config("generator=inpaint", f"generator.model={saved_models['img2img']}", "generator.gen_size=64")
    generator = build(cfg.generator)
    with pytest.raises(UserError, match=r"not an inpainting checkpoint \(its denoiser takes 4 channels, not 9\)"):
        generator.load()


# ------------------------------------------------------------------------ 3. one multirun over all twins


def test_multirun_over_all_twins_shares_ids_and_originals(tmp_path):
    data = tmp_path / "data"
    result = run_cli("+experiment=zoo_tiny", "limit=3", "logger=none", env={"DATA_DIR": str(data)}, timeout=600)
    assert result.returncode == 0, result.stderr
    dirs = sorted((data / "processed").iterdir())
    assert [d.name.split("-")[1] for d in dirs] == sorted(
        ["sd_tiny", "vae_tiny", "img2img_tiny", "inpaint_tiny", "unclip_tiny", "kandinsky_tiny"]
    )
    originals = [{k: v for k, v in file_bytes(d).items() if k.startswith("original/")} for d in dirs]
    assert len(originals[0]) == 3 and all(other == originals[0] for other in originals[1:])
    ids = [sorted(row["id"] for row in manifest_rows(d)) for d in dirs]
    assert all(other == ids[0] for other in ids[1:])
    alignments = {d.name.split("-")[1]: {row["alignment"] for row in manifest_rows(d)} for d in dirs}
    assert alignments == {
        "sd_tiny": {"semantic"},
        "vae_tiny": {"pixel"},
        "img2img_tiny": {"pixel"},
        "inpaint_tiny": {"pixel"},
        "unclip_tiny": {"semantic"},
        "kandinsky_tiny": {"semantic"},
    }


# ------------------------------------------------------------- 4. sd generates what it generated before

# sha256 of every ai/*.jpg of `source=samples generator=sd_tiny size=64` (5 steps, guidance 3, batch auto = 4),
# captured with the code before the move onto DiffusersGenerator, on the machine below.
SD_TINY_AI_SHA256 = {
    "astronaut": "063b55eeadd617f5f11be5bda191fc9b75c1fff94664661bf92aaa1a8d20577f",
    "camera": "fb895d2e90611aa1a99d1b871bfd15fb17a3f736d986f690e1c7cb6819d72941",
    "chelsea": "1b035fc853a78c7dcbc2fb32b3b2b358fb6a40f21f6acecb3b7f0891acbc8898",
    "coffee": "b59634b31fdbc6f056d7e47da7be154d357598b53d9ca8315a1dcd6dab9c4d6a",
    "hubble_deep_field": "3ac8110c4f7edf657f6887fd556c84414390dd609807e7935fa0a6a8d9c6ae88",
    "motorcycle_left": "6c3539435a51be017ee4e1ed17908c5ef08682e23e69e3c0175f755fb5071ae3",
    "retina": "901e43c00c149643110523eedb1805d91c2747995ebe6a84f63d06af7306a4ac",
    "rocket": "7384ac06303b317df153c98e6745c85c69413a7da8a36357caa0f07ba8b5de6a",
}
CAPTURED_ON = ("2.13.0+cpu", "AVX512", 2)  # torch, CPU capability, threads: float results depend on them


def captured_here() -> bool:
    return (torch.__version__, torch.backends.cpu.get_cpu_capability(), torch.get_num_threads()) == CAPTURED_ON


@pytest.mark.skipif(not captured_here(), reason=f"the hashes were captured on {CAPTURED_ON}")
def test_sd_tiny_makes_the_same_images_as_before_the_move(tmp_path):
    out = make_dataset(samples_cfg("sd_tiny", tmp_path / "out")).dataset_dir
    got = {path.stem: hashlib.sha256(path.read_bytes()).hexdigest() for path in (out / "ai").glob("*.jpg")}
    assert got == SD_TINY_AI_SHA256


def old_sd_generate(pipe, inputs: list[torch.Tensor], seeds: list[int], steps: int, guidance: float, side: int):
    """SDImageVariation.generate as it was before the move (commit 2bfc52c), verbatim apart from names."""
    processor = pipe.feature_extractor
    clip_side = pipe.image_encoder.config.image_size
    resized = [
        F.interpolate(image[None].float() / 255.0, size=(clip_side, clip_side), mode="bicubic", antialias=False)
        for image in inputs
    ]
    mean = torch.tensor(processor.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std).view(1, 3, 1, 1)
    generators = [torch.Generator(device=pipe.device).manual_seed(seed) for seed in seeds]
    with torch.inference_mode():
        return pipe(
            ((torch.cat(resized) - mean) / std).to(pipe.device),
            height=side,
            width=side,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
            output_type="pil",
        ).images


@pytest.mark.parametrize("guidance", [3.0, 1.0])
def test_sd_generates_what_the_old_code_path_generated(guidance, saved_models):
    """On any machine: the refactored generator and the old loading + call give the same pixels."""
    cfg = compose_config(
        "generator=sd", f"generator.model={saved_models['sd']}", "generator.gen_size=64", "generator.steps=2"
    )
    with open_dict(cfg):
        cfg.generator.guidance_scale = guidance
    generator = build(cfg.generator)
    generator.load()
    old_pipe = StableDiffusionImageVariationPipeline.from_pretrained(
        str(saved_models["sd"]), dtype=torch.float32, safety_checker=None, requires_safety_checker=False
    )
    old_pipe.set_progress_bar_config(disable=True)
    inputs = [generator.prepare(photo_square(side)) for side in (80, 96)]
    new = [variation.image for variation in generator.generate(inputs, [11, 12])]
    old = old_sd_generate(old_pipe, inputs, [11, 12], 2, guidance, 64)
    assert [np.asarray(image).tobytes() for image in new] == [np.asarray(image).tobytes() for image in old]
    assert generator.describe() == {
        "generator": "sd",
        "model": str(saved_models["sd"]),
        "revision": "v2.0",
        "weights": "pretrained",
        "alignment": "semantic",
        "steps": 2,
        "guidance_scale": guidance,
        "gen_size": 64,
        "scheduler": None,
    }


# --------------------------------------------------------------------- 5. a wrong option is one line


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (("generator=img2img", "generator.strength=1.5"), "generator.strength=1.5 must be in (0, 1]"),
        (("generator=img2img", "generator.strength=0.01"), "strength * steps must be at least 1"),
        (("generator=inpaint", "generator.steps=0"), "generator.steps=0 must be a whole number, at least 1"),
        (("generator=unclip", "generator.noise_level=-1"), "generator.noise_level=-1 must be a whole number"),
        (("generator=vae", "generator.latent=median"), "generator.latent='median' is not one of sample, mode"),
        (("generator=vae", "generator.model=/no/such/vae"), "folder does not exist"),
        (("generator=img2img", "generator.scheduler=Fast"), "generator.scheduler='Fast' is not a diffusers"),
        (("generator=img2img", "+generator.subfolder=unet"), "a subfolder applies to one component"),
        (("generator=kandinsky", "generator.gen_size=96"), "generator.gen_size=96 must be a multiple of 64"),
        (("generator=kandinsky", "generator.prior_model=/no/prior"), "generator.prior_model='/no/prior'"),
        (("generator=img2img", "generator.dtype=half"), "generator.dtype='half' is not one of"),
        (("generator=vae", "generator.vae_tiling=maybe"), "generator.vae_tiling='maybe' must be true or false"),
    ],
)
def test_a_wrong_option_is_one_line_before_any_work(overrides, fragment):
    with pytest.raises(UserError) as error:
        build(compose_config(*overrides).generator)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_a_subfolder_missing_from_a_local_folder_is_one_line(saved_models):
    cfg = compose_config("generator=vae", f"generator.model={saved_models['vae']}", "generator.subfolder=nope")
    with pytest.raises(UserError, match="generator.subfolder='nope': no such folder in"):
        build(cfg.generator)


def test_a_wrong_option_on_the_command_line_writes_nothing(tmp_path):
    result = run_cli("source=samples", "generator=img2img", "generator.strength=1.5", f"dataset_dir={tmp_path / 'o'}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "generator.strength=1.5 must be in (0, 1]" in line
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------------- batch_size=auto


@pytest.mark.parametrize("name", ["sd", "vae", "img2img", "inpaint", "unclip", "kandinsky"])
def test_auto_batch_size_follows_the_free_gpu_memory(name, monkeypatch):
    free = {"bytes": 0}
    monkeypatch.setattr(diffusers_base, "free_cuda_bytes", lambda device: free["bytes"])

    def batch(*overrides: str) -> tuple[int, object]:
        generator = build(compose_config(f"generator={name}", "generator.device=cuda", *overrides).generator)
        return generator.default_batch_size(), generator

    sizes = {}
    for gib in (2, 8, 80):
        free["bytes"] = gib * GIB
        sizes[gib], generator = batch()
        fixed, per_image = generator.memory_estimate(torch.float16 if name != "vae" else torch.float32)
        assert 1 <= sizes[gib] <= MAX_AUTO_BATCH
        if sizes[gib] > 1:  # what it chose fits the estimate, with the reserve
            assert fixed + sizes[gib] * per_image + gpu.CUDA_RESERVE_BYTES <= gib * GIB
    assert sizes[2] <= sizes[8] < sizes[80], sizes
    assert sizes[2] == 1  # a 2 GB card: one at a time, never zero
    free["bytes"] = 16 * GIB
    usual, _ = batch()
    assert batch("generator.gen_size=256")[0] > usual  # a quarter of the pixels
    assert batch("generator.vae_slicing=true")[0] > usual  # the autoencoder decodes one image at a time
    assert batch("generator.device=cpu")[0] == 4


def test_auto_batch_size_numbers_for_sd():
    """The arithmetic, spelled out: (free - weights - reserve) x headroom / per-image estimate, capped."""
    assert gpu.auto_batch_size(8 * GIB, 2.5 * GIB, 1.2 * GIB) == 3  # (8 - 2.5 - 1) * 0.85 / 1.2
    assert gpu.auto_batch_size(80 * GIB, 2.5 * GIB, 1.2 * GIB) == 54
    assert gpu.auto_batch_size(200 * GIB, 2.5 * GIB, 1.2 * GIB) == MAX_AUTO_BATCH
    assert gpu.auto_batch_size(1 * GIB, 2.5 * GIB, 1.2 * GIB) == 1


# ------------------------------------------------------------------------------- compile and CUDA graphs


def test_cudagraph_outputs_are_cloned_and_each_call_marks_a_new_step():
    """A fake CUDA-graph replay writes every output into one static buffer: behind the guard, an output kept
    from an earlier call (what a scheduler keeps at guidance <= 1) keeps its values."""
    static = torch.zeros(2)
    marks = []

    def replay(value: float):
        static.fill_(value)
        return UNet2DConditionOutput(sample=static)

    guarded = with_fresh_outputs(replay, lambda: marks.append(1))
    first = guarded(1.0)
    second = guarded(2.0)
    assert isinstance(first, UNet2DConditionOutput) and first.sample.tolist() == [1.0, 1.0]
    assert second.sample.tolist() == [2.0, 2.0] and len(marks) == 2
    unguarded = replay(1.0)
    replay(2.0)
    assert unguarded.sample.tolist() == [2.0, 2.0]  # what the guard prevents


def test_clone_outputs_keeps_the_structure():
    tensor = torch.ones(1)
    for value in (tensor, (tensor, None), [tensor], {"sample": tensor}, UNet2DConditionOutput(sample=tensor)):
        cloned = clone_outputs(value)
        assert type(cloned) is type(value)
    assert clone_outputs((tensor,))[0] is not tensor and clone_outputs(3) == 3


def test_compile_uses_cuda_graphs_behind_the_guard_only_on_cuda():
    calls = []

    def fake_compile(function, mode):
        calls.append(mode)
        return function

    module = torch.nn.Linear(2, 2)
    compile_module(module, torch.device("cpu"), fake_compile)
    assert calls == ["default"]
    module = torch.nn.Linear(2, 2)
    marks = []
    monkey_mark = torch.compiler.cudagraph_mark_step_begin
    try:
        torch.compiler.cudagraph_mark_step_begin = lambda: marks.append(1)
        compile_module(module, torch.device("cuda"), fake_compile)
        output = module(torch.ones(1, 2))
    finally:
        torch.compiler.cudagraph_mark_step_begin = monkey_mark
    assert calls == ["default", "reduce-overhead"] and marks == [1] and output.shape == (1, 2)
    assert module.weight.shape == (2, 2)  # still the module: the pipeline reads its config, dtype and device
