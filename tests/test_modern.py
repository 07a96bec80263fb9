"""The 2025-26 generators on CPU: each tiny twin end to end through from_pretrained, the real configs on a saved
folder, their one-line errors, the licences the configs state and the card lists, and `+experiment=zoo_2026_tiny`."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from aigen.errors import UserError
from aigen.export.licenses import UNKNOWN, model_terms
from aigen.factory import build, make_dataset
from aigen.generators.diffusers_base import QUIET_NOTICES, TRUNCATION_NOTICE
from aigen.generators.tiny_registry import ensure_tiny_model
from conftest import compose_config, file_bytes, manifest_rows, run_cli
from twin_checks import assert_twin_end_to_end, photo_square, samples_cfg

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 2
INSTRUCTION = (
    "Keep this photo exactly as it is: the same scene, subject, composition, colours and lighting, as an ordinary "
    "unedited photograph."
)
# What each twin's rows must carry besides the common keys: the settings that decide its pixels.
SETTINGS = {
    "sd35_tiny": {"alignment": "pixel", "strength": 0.3, "steps": 4, "guidance_scale": 4.5, "prompt": ""},
    "sd35_inpaint_tiny": {"alignment": "pixel", "strength": 1.0, "steps": 2, "guidance_scale": 4.5, "prompt": ""},
    "sdxl_tiny": {"alignment": "pixel", "strength": 0.3, "steps": 4, "guidance_scale": 5.0, "prompt": ""},
    "sdxl_refiner_tiny": {"alignment": "pixel", "strength": 0.3, "steps": 4, "guidance_scale": 5.0},
    "sdxl_inpaint_tiny": {"alignment": "pixel", "strength": 0.99, "steps": 2, "guidance_scale": 8.0},
    "zimage_tiny": {"alignment": "pixel", "strength": 0.3, "steps": 4, "guidance_scale": 0.0, "prompt": ""},
    "qwen_edit_tiny": {"alignment": "semantic", "steps": 2, "guidance_scale": 4.0, "prompt": INSTRUCTION},
}
SCHEDULERS = {
    "sd35_tiny": "FlowMatchEulerDiscreteScheduler",
    "sd35_inpaint_tiny": "FlowMatchEulerDiscreteScheduler",
    "sdxl_tiny": "EulerDiscreteScheduler",
    "sdxl_refiner_tiny": "EulerDiscreteScheduler",
    "sdxl_inpaint_tiny": "EulerDiscreteScheduler",
    "zimage_tiny": "FlowMatchEulerDiscreteScheduler",
    "qwen_edit_tiny": "FlowMatchEulerDiscreteScheduler",
}
# The experiment names the other helpers' generators too; until they are merged their configs are missing here.


# ------------------------------------------------------------------------------ 1. each twin end to end


@pytest.mark.parametrize("twin", list(SETTINGS))
def test_tiny_twin_end_to_end(twin, tmp_path):
    """Pairs at 64 px with alignment and settings in every row; resume; the same config twice gives the same
    bytes; another seed changes every AI image and no original."""
    assert_twin_end_to_end(twin, tmp_path, LIMIT, SETTINGS[twin], SCHEDULERS[twin])


class Printed(logging.Handler):
    """What a handler of diffusers' logger would print (diffusers' records never reach the root logger)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_tiny_twins_print_no_notice_a_user_cannot_act_on(tmp_path):
    """SDXL's inpaint pipeline casts its VAE around each encode (diffusers then warns of 'modules that should be kept
    in float32: []'); a tiny twin's byte-level tokenizer cuts the instruction that a real CLIP tokenizer keeps."""
    printed = Printed()
    logging.getLogger("diffusers").addHandler(printed)
    try:
        for twin in ("sdxl_inpaint_tiny", "flux_kontext_tiny"):
            assert make_dataset(samples_cfg(twin, tmp_path / twin, "limit=1")).generated == 1
    finally:
        logging.getLogger("diffusers").removeHandler(printed)
    assert not [m for m in printed.messages if "kept in float32" in m or "can only handle sequences" in m]
    # A real model's tokenizer cutting a prompt is news: only a tiny twin's generation hides it.
    notice = f"CLIP {TRUNCATION_NOTICE} 77 tokens"
    record = logging.LogRecord("diffusers", logging.WARNING, __file__, 1, notice, (), None)
    assert QUIET_NOTICES.filter(record) and not QUIET_NOTICES.tiny_generating


def test_the_instruction_is_recorded_and_names_the_dir(tmp_path):
    """Another instruction is another dataset: recorded per row, hashed into the dir name, other pixels."""
    default = make_dataset(samples_cfg("qwen_edit_tiny", tmp_path / "a", "limit=1"))
    other = make_dataset(samples_cfg("qwen_edit_tiny", tmp_path / "b", "limit=1", "generator.prompt=Make it night"))
    assert [row["prompt"] for row in manifest_rows(other.dataset_dir)] == ["Make it night"]
    ai = [next(path.glob("ai/*.jpg")).read_bytes() for path in (default.dataset_dir, other.dataset_dir)]
    assert ai[0] != ai[1]
    from aigen.identity import dataset_dir  # noqa: PLC0415

    names = []
    for overrides in ([], ["generator.prompt=Make it night"]):
        cfg = compose_config("generator=qwen_edit", *overrides)
        names.append(dataset_dir(cfg, build(cfg.source), build(cfg.generator)).name)
    assert all(name.startswith("indoor-qwen_edit-256-Qwen-Image-Edit-2509-g4.0-p") for name in names)
    assert names[0] != names[1]


# ----------------------------------------------------------- 2. the real configs load a saved folder

REAL = ["sd35", "sdxl", "sdxl_refiner", "sdxl_inpaint", "zimage", "qwen_edit"]


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """Each tiny repository saved once, then copied outside the cache: a stand-in for a downloaded model."""
    root = tmp_path_factory.mktemp("modern-models")
    folders = {}
    for name in [*REAL, "sd35_inpaint"]:
        folders[name] = root / name
        shutil.copytree(ensure_tiny_model(name, os.environ["AIGEN_CACHE"]), folders[name])
    return folders


@pytest.mark.parametrize("name", REAL)
def test_the_real_generator_loads_a_local_folder(name, saved_models):
    """The REAL config (not the twin) pointed at a folder: the path a downloaded model takes (Qwen's processor
    loaded image-only from the repository's `processor` folder)."""
    folder = saved_models[name]
    cfg = compose_config(f"generator={name}", f"generator.model={folder}", "generator.gen_size=64", "generator.steps=4")
    generator = build(cfg.generator)
    assert generator.weights == "pretrained" and generator.describe()["model"] == str(folder)
    generator.load()
    [variation] = generator.generate([generator.prepare(photo_square())], [7])
    assert variation.image.size == (64, 64)


def test_sd35_inpaint_needs_an_inpainting_checkpoint(saved_models):
    """No model: one line saying what to give. SD 3.5's own 16-channel transformer: refused, as it would only
    return the VAE's reconstruction. A 33-channel one loads."""
    with pytest.raises(UserError, match=r"generator.model is required for sd35_inpaint: an SD3 inpainting"):
        build(compose_config("generator=sd35_inpaint").generator)
    plain = compose_config("generator=sd35_inpaint", f"generator.model={saved_models['sd35']}", "generator.gen_size=64")
    with pytest.raises(UserError, match=r"not an inpainting checkpoint \(its denoiser takes 16 channels, not 33\)"):
        build(plain.generator).load()
    inpainting = compose_config(
        "generator=sd35_inpaint", f"generator.model={saved_models['sd35_inpaint']}", "generator.gen_size=64"
    )
    build(inpainting.generator).load()


@pytest.mark.parametrize("name", ["sd35", "zimage", "qwen_edit"])
def test_a_side_the_transformer_cannot_take_is_one_line(name):
    with pytest.raises(UserError, match=r"generator.gen_size=520 must be a multiple of 16"):
        build(compose_config(f"generator={name}", "generator.gen_size=520").generator)


def test_a_hub_id_not_in_the_cache_is_one_line_naming_the_model(tmp_path):
    """Offline with an empty Hugging Face cache: one line naming the model and the way out; nothing written."""
    out = tmp_path / "data"
    result = run_cli(
        "generator=qwen_edit",
        "source=samples",
        "size=64",
        "logger=none",
        env={"HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1", "DATA_DIR": str(out)},
    )
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "cannot load model 'Qwen/Qwen-Image-Edit-2509' (revision main) (HF_HUB_OFFLINE is set" in line
    assert not out.exists()


# ------------------------------------------------------------------------------------------- 3. licences


def test_every_generator_config_names_its_licence():
    """Each config states its weights' licence (null only where the user brings the checkpoint), and the class
    keeps it for the card."""
    for path in sorted((ROOT / "conf" / "generator").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        assert "license" in config, path.name
        if path.stem.endswith("_tiny"):
            assert config["license"] == "n/a (random weights: no trained model)", path.name
        elif path.stem != "sd35_inpaint":
            assert isinstance(config["license"], str) and config["license"], path.name
    expected = {"sd35": "stabilityai-ai-community", "sdxl": "openrail++", "qwen_edit": "apache-2.0", "vae": "mit"}
    for name, license in expected.items():
        assert build(compose_config(f"generator={name}").generator).license == license


def test_the_card_lists_the_licence_from_the_recorded_config(tmp_path):
    """The export's card reads each dataset's recorded `config.generator.license` (dataset.json)."""
    from aigen.dataset import DatasetDir  # noqa: PLC0415
    from aigen.export.card import all_terms  # noqa: PLC0415

    def dataset(name: str, model: str, license: str | None) -> DatasetDir:
        content = {"generator": name, "model": model, "source": {"name": "samples", "identity": "package skimage.data"}}
        return DatasetDir(tmp_path / name, {"content": content, "config": {"generator": {"license": license}}}, {})

    terms = all_terms(
        [
            dataset("zimage", "Tongyi-MAI/Z-Image-Turbo", "apache-2.0"),
            dataset("sd35", "stabilityai/stable-diffusion-3.5-medium", "stabilityai-ai-community"),
            dataset("sdxl", "/my/copy/of/sdxl", None),
        ]
    )
    licenses = {part.name: part.license for part in terms}
    assert licenses["zimage: Tongyi-MAI/Z-Image-Turbo"] == "apache-2.0"
    assert licenses["sd35: stabilityai/stable-diffusion-3.5-medium"] == "stabilityai-ai-community"
    assert licenses["sdxl: /my/copy/of/sdxl"] == UNKNOWN


def test_the_card_takes_the_configured_licence():
    """The licence the dataset's recorded config states wins over the table; without one, the table, else unknown."""
    content = {"generator": "sdxl", "model": "stabilityai/stable-diffusion-xl-base-1.0"}
    assert model_terms(content, "openrail++").license == "openrail++"
    assert model_terms(content).license == UNKNOWN
    sd = {"generator": "sd", "model": "lambdalabs/sd-image-variations-diffusers"}
    assert "rombach2022high" in model_terms(sd, "creativeml-openrail-m").citation  # the table's citation stays


# ---------------------------------------------------------------------- 4. +experiment=zoo_2026_tiny


def experiment_generators(name: str) -> list[str]:
    config = yaml.safe_load((ROOT / "conf" / "experiment" / f"{name}.yaml").read_text())
    return config["hydra"]["sweeper"]["params"]["generator"].split(",")


def test_zoo_2026_lists_every_2026_generator():
    real = experiment_generators("zoo_2026")
    tiny = experiment_generators("zoo_2026_tiny")
    assert {f"{name}_tiny" for name in real if name != "gemini_image"} <= set(tiny)
    assert {"flux_redux", "flux_fill", "flux_kontext", "flux2_klein", "qwen_edit", "sd35", "sdxl", "zimage"} <= set(
        real
    )


def test_zoo_2026_tiny_shares_ids_and_originals(tmp_path):
    """The experiment's own list (those whose configs are here), one multirun: every generator makes pairs with its
    alignment recorded, all from the same photos with byte-identical originals."""
    listed = experiment_generators("zoo_2026_tiny")
    present = [name for name in listed if (ROOT / "conf" / "generator" / f"{name}.yaml").exists()]
    assert present == listed
    data = tmp_path / "data"
    result = run_cli(
        "+experiment=zoo_2026_tiny",
        f"generator={','.join(present)}",
        "limit=2",
        "logger=none",
        env={"DATA_DIR": str(data)},
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    dirs = sorted((data / "processed").iterdir())
    assert sorted(d.name.split("-")[1] for d in dirs) == sorted(present)
    originals = [{k: v for k, v in file_bytes(d).items() if k.startswith("original/")} for d in dirs]
    assert len(originals[0]) == 2 and all(other == originals[0] for other in originals[1:])
    ids = [sorted(row["id"] for row in manifest_rows(d)) for d in dirs]
    assert all(other == ids[0] for other in ids[1:])
    for d in dirs:
        assert {row["alignment"] for row in manifest_rows(d)} <= {"pixel", "semantic"}, d.name


# ------------------------------------------------------------------ 5. the check for a lent GPU, on a CPU


def test_gpu_check_plans_its_stages_within_eight_minutes(tmp_path):
    """The plan: the four stages, their limits summing to at most 8 minutes, one file in OUTDIR."""
    script = ROOT / "benchmarks" / "gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    out = tmp_path / "out"
    result = subprocess.run(["bash", str(script), str(out), "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    tables = (out / "gpu_check.md").read_text()
    stages = re.findall(r"^## (.+)$", tables, re.M)
    assert stages == [
        "gpu-marked tests",
        "SD image variations: the seed's way, the default, compiled",
        "zoo at full architecture size",
        "out of memory on real memory",
    ]
    assert "-m pytest -m gpu" in tables and "--compile" in tables and "--oom-only" in tables
    assert sum(int(limit) for limit in re.findall(r"\(limit (\d+) s\)", tables)) <= 8 * 60
    wrong = subprocess.run(["bash", str(script), str(out), "--fast"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "unknown option --fast" in wrong.stderr


def test_gpu_benchmark_runs_its_zoo_and_out_of_memory_code_on_tiny_twins(capsys):
    """benchmarks/gpu.py's zoo row and out-of-memory check, through the same code, on tiny twins (CPU)."""
    sys.path.insert(0, str(ROOT))
    from benchmarks import gpu  # noqa: PLC0415

    gpu.main(["--tiny", "--zoo-only", "--max-batch", "1", "--only", "sd35", "zimage"])
    printed = capsys.readouterr().out
    assert re.search(r"^\| sd35 \| aigen/sd35-tiny-random \| pixel \| 64 \| 4 \| 1 \(auto 2\) \|", printed, re.M)
    assert re.search(r"^\| zimage \| aigen/zimage-tiny-random \| pixel \|", printed, re.M)
    gpu.main(["--tiny", "--oom-only", "--oom-batch", "2"])
    printed = capsys.readouterr().out
    assert "| 2 | n/a (CPU) | none | 2 | 2 | 0 |" in printed and "NOT EXERCISED" in printed
    with pytest.raises(SystemExit):
        gpu.main(["--only", "nope"])


def test_full_size_architectures_have_their_published_sizes():
    """Each full-size architecture benchmarks/gpu.py builds (on the meta device: no memory) has the parameter count
    its model card or checkpoint states, within 3% (parameters and persistent buffers, as a checkpoint holds)."""
    from accelerate import init_empty_weights  # noqa: PLC0415

    sys.path.insert(0, str(ROOT))
    from benchmarks import gpu  # noqa: PLC0415

    for (name, part), published in gpu.PUBLISHED_MILLIONS.items():
        with init_empty_weights(include_buffers=False):
            built = gpu.ZOO[name]()
        pipe = built[0] if isinstance(built, tuple) else built
        module = getattr(pipe, part)
        millions = sum(tensor.numel() for tensor in [*module.parameters(), *module.buffers()]) / 1e6
        assert abs(millions - published) <= 0.03 * published, (name, part, millions, published)


def test_sdxl_never_watermarks(saved_models, monkeypatch):
    """Whether `invisible-watermark` is installed must not change SDXL's pixels: the watermarker is never loaded,
    even where the package is there (as if it were, here)."""
    from diffusers.pipelines.stable_diffusion_xl import (  # noqa: PLC0415
        pipeline_stable_diffusion_xl_img2img,
        pipeline_stable_diffusion_xl_inpaint,
    )

    for module in (pipeline_stable_diffusion_xl_img2img, pipeline_stable_diffusion_xl_inpaint):
        monkeypatch.setattr(module, "is_invisible_watermark_available", lambda: True)
    for name in ("sdxl", "sdxl_inpaint"):
        cfg = compose_config(f"generator={name}", f"generator.model={saved_models[name]}", "generator.gen_size=64")
        generator = build(cfg.generator)
        generator.load()
        assert generator._pipe.watermark is None


def test_batch_size_auto_counts_one_image_at_a_time_for_qwen_edit(monkeypatch):
    """qwen_edit runs one image per pipeline call: a batch adds only its pixels, so auto fits many at once; the
    batched img2img generators pay their activations per image."""
    from aigen.generators import diffusers_base, gpu  # noqa: PLC0415

    monkeypatch.setattr(diffusers_base, "resolve_device", lambda device: torch.device("cuda"))
    monkeypatch.setattr(diffusers_base, "free_cuda_bytes", lambda device: 80 * gpu.GIB)
    qwen = build(compose_config("generator=qwen_edit").generator)
    fixed, per_image = qwen.memory_estimate(torch.bfloat16)
    assert round(fixed / gpu.GIB, 1) == 53.7 + 2.3 and per_image == 0.02 * gpu.GIB
    assert qwen.default_batch_size() == gpu.MAX_AUTO_BATCH
    sd35 = build(compose_config("generator=sd35").generator)
    assert sd35.default_batch_size() == int((80 - 15.2 - 1) * 0.85 / 1.3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("twin", list(SETTINGS))
def test_tiny_twin_on_cuda_in_its_published_dtype(twin):
    """On a GPU with dtype=auto (bfloat16 for SD 3.5, Z-Image and Qwen; float16 for SDXL): images of the right size,
    not the black squares NaNs become, and the same bytes for the same seed twice."""
    cfg = compose_config(f"generator={twin}", "generator.device=cuda")
    generator = build(cfg.generator)
    generator.load()
    photos = [generator.prepare(photo_square())] * 2
    first = [np.asarray(variation.image) for variation in generator.generate(photos, [1, 2])]
    again = [np.asarray(variation.image) for variation in generator.generate(photos, [1, 2])]
    for image, same in zip(first, again, strict=True):
        assert image.shape == (64, 64, 3) and image.max() > 0
        assert np.array_equal(image, same)
