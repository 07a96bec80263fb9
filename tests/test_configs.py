"""Every config group option composes and instantiates; the CLI prints its config."""

from pathlib import Path

import pytest
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from aigen.generators.diffusers_base import DiffusersGenerator
from aigen.identity import dataset_dir
from conftest import compose_config, run_cli

SOURCES = ["indoor", "samples", "folder"]
ZOO = ["vae", "img2img", "inpaint", "unclip", "kandinsky"]
ZOO_2026 = ["sd35", "sdxl", "sdxl_refiner", "sdxl_inpaint", "zimage", "qwen_edit"]  # sd35_inpaint needs a model
GENERATORS = [
    "sd",
    "sd_tiny",
    "dalle2",
    "gpt_image",
    "gemini_image",
    "identity",
    "lossless_twin",
    "native_twin",
    *ZOO,
    *(f"{name}_tiny" for name in ZOO),
    *ZOO_2026,
    *(f"{name}_tiny" for name in [*ZOO_2026, "sd35_inpaint"]),
]
LOGGERS = ["none", "wandb"]


# The twin controls pair a folder of photos with its twins: they need a source with a root.
TWINS = ("lossless_twin", "native_twin")
COMBINATIONS = [(s, g) for s in SOURCES for g in GENERATORS if s != "samples" or g not in TWINS]


@pytest.mark.parametrize(("source", "generator"), COMBINATIONS)
@pytest.mark.parametrize("logger", LOGGERS)
def test_every_option_composes(source, generator, logger, tmp_path):
    root = [f"source.root={tmp_path}"] if source != "samples" else []
    twins = [f"generator.twins={tmp_path}"] if generator in TWINS else []
    cfg = compose_config(f"source={source}", f"generator={generator}", f"logger={logger}", *root, *twins)
    assert OmegaConf.to_container(cfg, resolve=True)
    assert instantiate(cfg.source).name == (cfg.source.name or tmp_path.name)
    generator_object = instantiate(cfg.generator)
    assert generator_object.describe()["generator"] == generator
    assert instantiate(cfg.loader).min_side == cfg.size


def test_defaults_are_the_real_job():
    cfg = compose_config()
    assert cfg.source.name == "indoor" and cfg.generator.name == "sd"
    assert cfg.generator.model == "lambdalabs/sd-image-variations-diffusers"
    assert cfg.generator.revision == "v2.0"
    assert (cfg.generator.steps, cfg.guidance_scale, cfg.generator.gen_size, cfg.size) == (50, 3.0, 512, 256)
    path = dataset_dir(cfg, instantiate(cfg.source), instantiate(cfg.generator))
    assert path.relative_to(Path.cwd()).as_posix() == "data/processed/indoor-sd-256-g3.0-s0"


@pytest.mark.parametrize(
    ("generator", "name"),
    [
        ("dalle2", "indoor-dalle2-256-dall-e-2-512x512"),
        ("gpt_image", "indoor-gpt_image-256-gpt-image-2.6-sunburst-1024x1024-medium-png-p"),
        ("gemini_image", "indoor-gemini_image-256-gemini-3.1-flash-image-1K-p"),
    ],
)
def test_api_dataset_dirs_are_named_by_what_decides_their_pixels(generator, name):
    cfg = compose_config(f"generator={generator}", "seed=7", "guidance_scale=9")
    path = dataset_dir(cfg, instantiate(cfg.source), instantiate(cfg.generator))
    assert path.name.startswith(name) and "s7" not in path.name and "g9" not in path.name


def test_demo_experiment_composes():
    cfg = compose_config("+experiment=demo")
    assert (cfg.source.name, cfg.generator.name) == ("samples", "sd_tiny")


def test_cli_prints_job_config():
    result = run_cli("--cfg", "job", "generator=sd", "size=256")
    assert result.returncode == 0, result.stderr
    assert "lambdalabs/sd-image-variations-diffusers" in result.stdout
    assert "size: 256" in result.stdout


@pytest.mark.parametrize(
    "name", sorted(path.stem for path in (Path(__file__).parents[1] / "conf/generator").glob("*.yaml"))
)
def test_every_pipeline_config_spells_out_the_options_its_class_takes(name):
    """offload and quantize are documented for every pipeline on the diffusers base, and max_side for every one that
    runs at gen_size=native: a key missing from the YAML is "no key" on the command line (only +key= works)."""
    cfg = compose_config(f"generator={name}").generator
    target = get_class(cfg._target_)
    if issubclass(target, DiffusersGenerator) and target.kind == "pipeline":
        assert {"offload", "quantize"} <= set(cfg), name
    if issubclass(target, DiffusersGenerator) and target.native_sides:
        assert "max_side" in cfg, name
