"""The FLUX generators on CPU (flux_fill, flux_kontext, flux_redux, flux2_klein): each tiny twin end to end through
make_dataset and the CLI, rows with alignment and settings, byte-identical reruns, the real configs loading a saved
folder, and the big-model options (offload, quantize, the too-big-for-the-GPU line) in the diffusers base."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import skimage.data
import torch
from diffusers import Flux2KleinPipeline
from PIL import Image

from aigen.errors import UserError
from aigen.factory import build, make_dataset
from aigen.generators import diffusers_base
from aigen.generators.flux import KEEP_PHOTO
from aigen.generators.gpu import CUDA_RESERVE_BYTES, GIB, MAX_AUTO_BATCH, too_big_for_the_gpu
from aigen.generators.tiny_registry import ensure_tiny_model
from aigen.identity import dataset_dir
from conftest import compose_config, file_bytes, manifest_rows, run_cli
from twin_checks import assert_twin_end_to_end, photo_square, samples_cfg

NAMES = ["flux_fill", "flux_kontext", "flux_redux", "flux2_klein"]
TWINS = [f"{name}_tiny" for name in NAMES]
LIMIT = 2
# What each twin's rows must carry: its alignment and the settings that decide its pixels.
SETTINGS = {
    "flux_fill_tiny": {"alignment": "pixel", "strength": 1.0, "prompt": "", "steps": 2, "guidance_scale": 30.0},
    "flux_kontext_tiny": {"alignment": "semantic", "prompt": KEEP_PHOTO, "steps": 2, "guidance_scale": 2.5},
    "flux_redux_tiny": {
        "alignment": "semantic",
        "prior_model": "aigen/flux-redux-tiny-random/prior",
        "prior_revision": "v1",
        "steps": 2,
        "guidance_scale": 2.5,
    },
    "flux2_klein_tiny": {"alignment": "semantic", "prompt": KEEP_PHOTO, "steps": 2, "guidance_scale": 1.0},
}
LICENSES = {
    "flux_fill": "flux-1-dev-non-commercial",
    "flux_kontext": "flux-1-dev-non-commercial",
    "flux_redux": "flux-1-dev-non-commercial",
    "flux2_klein": "apache-2.0",
}


# ------------------------------------------------------------------------------ 1. each twin end to end


@pytest.mark.parametrize("twin", TWINS)
def test_tiny_twin_end_to_end(twin, tmp_path):
    """As every zoo twin (twin_checks), with FLUX's flow-matching scheduler; no offload nor quantization recorded."""
    dataset_dir = assert_twin_end_to_end(twin, tmp_path, LIMIT, SETTINGS[twin], "FlowMatchEulerDiscreteScheduler")
    rows = manifest_rows(dataset_dir)
    assert [(row["gen_size"], row["offload"], row["quantize"]) for row in rows] == [(64, "none", "none")] * LIMIT


def test_the_cli_runs_every_twin_on_the_same_photos(tmp_path):
    """`python run.py -m generator=...` as a user types it: one dataset per twin, the same ids and originals."""
    data = tmp_path / "data"
    result = run_cli(
        "-m",
        f"generator={','.join(TWINS)}",
        "source=samples",
        "size=64",
        f"limit={LIMIT}",
        "logger=none",
        env={"DATA_DIR": str(data)},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    dirs = {d.name.split("-")[1]: d for d in (data / "processed").iterdir()}
    assert sorted(dirs) == sorted(TWINS)
    originals = [{k: v for k, v in file_bytes(d).items() if k.startswith("original/")} for d in dirs.values()]
    assert len(originals[0]) == LIMIT and all(other == originals[0] for other in originals[1:])
    for twin, folder in dirs.items():
        assert {row["alignment"] for row in manifest_rows(folder)} == {SETTINGS[twin]["alignment"]}


def test_the_kontext_instruction_is_recorded_and_decides_the_pixels(tmp_path):
    plain = make_dataset(samples_cfg("flux_kontext_tiny", tmp_path / "a", "limit=1")).dataset_dir
    prompt = "Make it a watercolour painting."
    edited = make_dataset(samples_cfg("flux_kontext_tiny", tmp_path / "b", "limit=1", f"generator.prompt='{prompt}'"))
    assert [row["prompt"] for row in manifest_rows(edited.dataset_dir)] == [prompt]
    before, after = file_bytes(plain), file_bytes(edited.dataset_dir)
    assert [name for name in before if before[name] != after[name]] == [name for name in before if "ai/" in name]
    cfg = compose_config("generator=flux_kontext", f"generator.prompt='{prompt}'")
    default_cfg = compose_config("generator=flux_kontext")
    named = dataset_dir(cfg, build(cfg.source), build(cfg.generator)).name
    assert named != dataset_dir(default_cfg, build(default_cfg.source), build(default_cfg.generator)).name


# ----------------------------------------------------------- 2. the real configs load a saved folder


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """Each tiny model saved once, then copied outside the cache: a stand-in for a downloaded local copy."""
    root = tmp_path_factory.mktemp("local-flux")
    folders = {}
    for name in NAMES:
        folders[name] = root / name
        shutil.copytree(ensure_tiny_model(name, os.environ["AIGEN_CACHE"]), folders[name])
    return folders


def real_generator(name: str, folder, *overrides: str):
    prior = [f"generator.prior_model={folder / 'prior'}"] if name == "flux_redux" else []
    cfg = compose_config(
        f"generator={name}",
        f"generator.model={folder}",
        "generator.gen_size=64",
        "generator.steps=2",
        *prior,
        *overrides,
    )
    return build(cfg.generator)


@pytest.mark.parametrize("name", NAMES)
def test_the_real_config_loads_a_local_folder_and_names_its_licence(name, saved_models):
    generator = real_generator(name, saved_models[name])
    assert generator.weights == "pretrained" and generator.describe()["model"] == str(saved_models[name])
    assert generator.license == LICENSES[name]
    generator.load()
    [variation] = generator.generate([generator.prepare(photo_square())], [7])
    assert variation.image.size == (64, 64)
    assert variation.info == {"scheduler": "FlowMatchEulerDiscreteScheduler", "offload": "none", "quantize": "none"}


def two_photos(generator) -> list[Image.Image]:
    return [
        generator.prepare(Image.fromarray(image).resize((96, 96)))
        for image in (skimage.data.astronaut(), skimage.data.chelsea())
    ]


def pixels(variations) -> list[np.ndarray]:
    return [np.asarray(variation.image, dtype=np.int16) for variation in variations]


@pytest.mark.parametrize("name", NAMES)
def test_the_photo_decides_the_fake_and_not_its_batch(name, saved_models):
    """Another photo with the same seed makes another image (the tiny random models barely look at it, but they
    do); two photos in one batch make what each makes alone, up to the rounding of batched arithmetic."""
    generator = real_generator(name, saved_models[name])
    generator.load()
    photos = two_photos(generator)
    same_seed = pixels(generator.generate(photos, [1, 1]))
    assert np.abs(same_seed[0] - same_seed[1]).max() > 0
    together = pixels(generator.generate(photos, [1, 2]))
    alone = [pixels(generator.generate([photo], [seed]))[0] for photo, seed in zip(photos, [1, 2], strict=True)]
    for batched, single in zip(together, alone, strict=True):
        assert np.abs(batched - single).max() <= 2 and np.abs(batched - single).mean() < 0.01, name


def test_redux_conditions_each_photo_on_its_own(saved_models, monkeypatch):
    """The Redux prior sums a list of images into one embedding: it is called once per photo, one photo each."""
    generator = real_generator("flux_redux", saved_models["flux_redux"])
    generator.load()
    seen = []
    prior = generator._prior
    monkeypatch.setattr(generator, "_prior", lambda image: seen.append(image) or prior(image=image))
    generator.generate(two_photos(generator), [1, 2])
    assert [type(image) for image in seen] == [Image.Image, Image.Image]


def test_klein_takes_each_photo_as_the_one_reference_of_its_own_call(saved_models, monkeypatch):
    """Flux2KleinPipeline reads a list of images as several references of one prompt: one call per photo."""
    generator = real_generator("flux2_klein", saved_models["flux2_klein"])
    generator.load()
    seen = []
    call = Flux2KleinPipeline.__call__
    monkeypatch.setattr(Flux2KleinPipeline, "__call__", lambda pipe, **kw: seen.append(kw["image"]) or call(pipe, **kw))
    generator.generate(two_photos(generator), [1, 2])
    assert [type(image) for image in seen] == [Image.Image, Image.Image]


def test_flux_fill_refuses_a_checkpoint_that_is_not_a_fill_model(saved_models):
    """FLUX Kontext's transformer takes the packed latents only: with an all-zero mask it could not see the photo."""
    generator = real_generator("flux_fill", saved_models["flux_kontext"])
    with pytest.raises(
        UserError, match=r"is not a FLUX Fill checkpoint \(its transformer takes 16 channels, not 288\)"
    ):
        generator.load()


def test_a_redux_prior_not_in_the_cache_is_one_line_naming_the_prior(saved_models):
    """FLUX.1 dev from a local folder, the Redux prior by hub id, offline: loading stops on the prior, by name."""
    cfg = compose_config("generator=flux_redux", f"generator.model={saved_models['flux_redux']}")
    generator = build(cfg.generator)
    with pytest.raises(UserError) as error:
        generator.load()
    message = str(error.value)
    assert message.startswith("cannot load model 'black-forest-labs/FLUX.1-Redux-dev' (revision main)")
    assert message.endswith("or set generator.prior_model=/path/to/a/local/copy") and "\n" not in message


# ------------------------------------------------------------------------------------------- quantize


def transformer_weight(generator) -> torch.Tensor:
    return generator._pipe.transformer.transformer_blocks[0].ff.net[0].proj.weight


@pytest.mark.parametrize(("quantize", "tensor_type"), [("int8", "Int8Tensor"), ("fp8", "Float8Tensor")])
def test_quantize_loads_the_transformer_in_8_bits_and_is_recorded(quantize, tensor_type, saved_models):
    """The real from_pretrained path with diffusers' torchao config: the transformer's linear weights become
    torchao's 8-bit tensors (the text encoders stay as they are), the pixels change, and the setting is in the
    fingerprint, the dir name and every row."""
    plain = real_generator("flux_fill", saved_models["flux_fill"])
    plain.load()
    quantized = real_generator("flux_fill", saved_models["flux_fill"], f"generator.quantize={quantize}")
    quantized.load()
    assert type(transformer_weight(quantized)).__name__ == tensor_type
    assert type(transformer_weight(plain)) is torch.nn.Parameter
    assert (
        type(quantized._pipe.text_encoder_2.encoder.block[0].layer[1].DenseReluDense.wi.weight).__name__ == "Parameter"
    )
    photo = [plain.prepare(photo_square())]
    [before], [after] = plain.generate(photo, [3]), quantized.generate(photo, [3])
    assert not np.array_equal(np.asarray(before.image), np.asarray(after.image))
    assert after.info["quantize"] == quantize and quantized.describe()["quantize"] == quantize
    assert "quantize" not in plain.describe()
    assert quantized.dir_tags()[-1] == f"quantize_{quantize}" and not plain.dir_tags()[-1].startswith("quantize")
    assert f"quantize={quantize}" in quantized.plan(1)


@pytest.mark.parametrize("name", ["sd", "img2img", "inpaint", "unclip", "kandinsky", *NAMES])
def test_every_pipeline_generator_names_offload_and_quantize_in_its_dir_only_when_used(name):
    def dir_name(*overrides: str) -> str:
        cfg = compose_config(f"generator={name}", "generator.device=cuda", *overrides)
        return dataset_dir(cfg, build(cfg.source), build(cfg.generator)).name

    plain = dir_name()
    assert "offload" not in plain and "quantize" not in plain
    both = dir_name("generator.offload=model", "generator.quantize=fp8")
    assert both == f"{plain.removesuffix('-s0')}-offload_model-quantize_fp8-s0"


def test_quantize_without_torchao_says_what_to_install(monkeypatch):
    monkeypatch.setattr(diffusers_base, "torchao_installed", lambda: False)
    with pytest.raises(UserError) as error:
        build(compose_config("generator=flux2_klein", "generator.quantize=int8").generator)
    assert str(error.value) == "generator.quantize=int8 needs torchao: pip install 'aigen[quantize]' (or torchao)"


# ------------------------------------------------------------------------------- wrong options: one line


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (("generator=flux_fill", "generator.offload=disk"), "generator.offload='disk' is not one of none, model, sequ"),
        (("generator=flux_kontext", "generator.quantize=int4"), "generator.quantize='int4' is not one of none, fp8, "),
        (
            ("generator=flux2_klein", "generator.offload=model", "generator.device=cpu"),
            "but generator.device is the CPU",
        ),
        (
            ("generator=flux_redux", "generator.offload=sequential", "generator.device=cpu"),
            "set generator.offload=none",
        ),
        (("generator=vae", "+generator.quantize=int8"), "generator.quantize=int8: applies to a whole pipeline"),
        (("generator=flux_fill", "generator.gen_size=72"), "generator.gen_size=72 must be a multiple of 16 for FLUX"),
        (("generator=flux_redux", "generator.prior_model=/no/prior"), "generator.prior_model='/no/prior': folder"),
        (("generator=flux_fill", "generator.strength=0"), "generator.strength=0.0 must be in (0, 1]"),
        (("generator=flux_kontext", "generator.prompt=null"), "generator.prompt=None must be a string"),
        (("generator=flux2_klein", "generator.steps=0"), "generator.steps=0 must be a whole number, at least 1"),
    ],
)
def test_a_wrong_option_is_one_line_before_any_work(overrides, fragment):
    with pytest.raises(UserError) as error:
        build(compose_config(*overrides).generator)
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_offload_on_the_cpu_stops_the_cli_before_writing(tmp_path):
    """The decision for a machine without a GPU: offload is refused in one line (nothing would be offloaded)."""
    out = tmp_path / "o"
    overrides = ("generator=flux_fill_tiny", "source=samples", "generator.device=cpu", "generator.offload=model")
    result = run_cli(*overrides, f"dataset_dir={out}")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "generator.offload=model moves weights between the CPU and a GPU" in line
    assert not out.exists()


# ------------------------------------------------------------------- too big for the GPU, batch_size=auto


def test_too_big_for_the_gpu_is_one_line_naming_offload_and_quantize():
    assert too_big_for_the_gpu("flux_fill", 31.5 * GIB, 80 * GIB, "none", "none") is None
    assert too_big_for_the_gpu("flux_fill", 23 * GIB, 24 * GIB, "none", "none") is None  # exactly with the reserve
    message = too_big_for_the_gpu("flux_fill", 31.5 * GIB, 24 * GIB, "none", "none")
    assert message == (
        "flux_fill needs about 31.5 GiB of GPU memory for its weights (an estimate, with generator.offload=none "
        "generator.quantize=none) but the GPU has 24.0 GiB free: set generator.offload=model (or sequential) "
        "and/or generator.quantize=int8 (or fp8)"
    )
    assert too_big_for_the_gpu("x", 23 * GIB + 1, 23 * GIB + CUDA_RESERVE_BYTES, "model", "int8") is not None


@pytest.fixture
def gpu_with(monkeypatch):
    """A CUDA device with `gib` GiB free, as free_cuda_bytes reports it (no GPU needed before loading)."""
    free = {"bytes": 0}
    monkeypatch.setattr(diffusers_base, "free_cuda_bytes", lambda device: free["bytes"])

    def generator(gib: float, name: str = "flux_fill", *overrides: str):
        free["bytes"] = int(gib * GIB)
        return build(compose_config(f"generator={name}", "generator.device=cuda", *overrides).generator)

    return generator


def test_a_model_too_big_stops_before_loading_in_one_line(gpu_with):
    """flux_fill's 31.5 GiB on a 24 GiB card: load() stops before it reads anything (batch_size=auto alone would
    only say 1); with int8 weights the same card is enough to start."""
    with pytest.raises(UserError, match=r"^flux_fill needs about 31\.5 GiB .* set generator\.offload=model"):
        gpu_with(24).load()
    with pytest.raises(UserError, match="cannot load model 'black-forest-labs/FLUX.1-Fill-dev'"):
        gpu_with(24, "flux_fill", "generator.quantize=int8").load()  # past the check, to the (offline) hub


def test_batch_size_auto_counts_offload_and_quantize(gpu_with):
    """On a 24 GiB card FLUX.1 Fill (31.5 GiB in bf16) fits only with help; each option leaves more room."""
    sizes = {}
    for options in (("int8",), ("model",), ("model", "int8"), ("sequential",)):
        overrides = [f"generator.quantize={o}" if o in ("int8", "fp8") else f"generator.offload={o}" for o in options]
        generator = gpu_with(24, "flux_fill", *overrides)
        sizes[options] = generator.default_batch_size()
        fixed, per_image = generator.memory_estimate(torch.bfloat16)
        if sizes[options] > 1:  # what it chose fits the estimate, with the reserve
            assert fixed + sizes[options] * per_image + CUDA_RESERVE_BYTES <= 24 * GIB
    assert sizes[("model",)] < sizes[("int8",)] < sizes[("model", "int8")] < sizes[("sequential",)], sizes
    assert sizes[("sequential",)] <= MAX_AUTO_BATCH
    weights = {
        options: gpu_with(80, "flux_fill", *options).memory_estimate(torch.bfloat16)[0] / GIB
        for options in ((), ("generator.quantize=int8",), ("generator.offload=model",))
    }
    assert weights[()] == pytest.approx(31.49)  # transformer 22.2 + T5 8.9 + CLIP 0.23 + VAE 0.16
    assert weights[("generator.quantize=int8",)] == pytest.approx(31.49 - 11.1)  # the transformer in 8 bits
    assert weights[("generator.offload=model",)] == pytest.approx(22.2)  # the largest component at a time


def test_every_flux_config_composes_and_instantiates():
    for name in [*NAMES, *TWINS]:
        generator = build(compose_config(f"generator={name}").generator)
        assert generator.describe()["generator"] == name
        assert generator.license == LICENSES.get(name, "n/a (random weights: no trained model)")


# -------------------------------------------------------------------------------------- on a CUDA GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("offload", ["model", "sequential"])
def test_offload_on_a_gpu_makes_the_same_pixels(offload):
    """CPU offload moves weights, not arithmetic: the same images as the pipeline kept on the GPU."""

    def images(*overrides: str) -> list[np.ndarray]:
        cfg = compose_config("generator=flux_fill_tiny", "generator.device=cuda", "generator.dtype=float32", *overrides)
        generator = build(cfg.generator)
        generator.load()
        photos = [generator.prepare(photo_square(side)) for side in (80, 96)]
        return [np.asarray(v.image) for v in generator.generate(photos, [1, 2])]

    kept, offloaded = images(), images(f"generator.offload={offload}")
    assert all(np.array_equal(a, b) for a, b in zip(kept, offloaded, strict=True))
