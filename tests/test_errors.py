"""User mistakes end in one clear line on stderr and a non-zero exit code, never a traceback."""

import subprocess
import sys

import pytest

from aigen.errors import UserError
from aigen.overrides import check_overrides
from conftest import CONF, TINY, run_cli


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0]


def test_missing_indoor_folder_points_at_the_download_script(tmp_path):
    result = run_cli("generator=sd_tiny", "logger=none", env={"DATA_DIR": str(tmp_path)})
    assert_one_line_error(result, "does not exist", "./download_indoor.sh")


def test_folder_without_images(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    result = run_cli(*TINY, "source=folder", f"source.root={tmp_path / 'empty'}", f"dataset_dir={tmp_path / 'o'}")
    assert_one_line_error(result, "no images found")


@pytest.mark.parametrize("size", ["100", "0", "-8"])
def test_size_must_be_a_positive_multiple_of_8(tmp_path, size):
    result = run_cli(*TINY, f"size={size}", f"dataset_dir={tmp_path / 'o'}")
    assert_one_line_error(result, f"size={size}", "multiple of 8")


def test_model_not_loadable_offline(tmp_path):
    result = run_cli(
        "source=samples",
        "generator=sd",
        "size=64",
        "logger=none",
        f"dataset_dir={tmp_path / 'o'}",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    assert_one_line_error(result, "lambdalabs/sd-image-variations-diffusers", "HF_HUB_OFFLINE", "generator.model=")
    assert not (tmp_path / "o").exists()  # a failed start leaves no trace


def test_bad_generator_setting_is_one_line(tmp_path):
    result = run_cli(*TINY, "generator.gen_size=100", f"dataset_dir={tmp_path / 'o'}")
    assert_one_line_error(result, "generator.gen_size=100", "multiple of 8")


# Config typos: one line that names the closest valid key or option, never Hydra's `+key` advice.


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("generater=sd_tiny", "`generator=sd_tiny`"),
        ("generator=sd_tny", "`generator=sd_tiny`"),
        ("generator.stepz=3", "`generator.steps=3`"),
        ("sise=64", "`size=64`"),
        ("+experiment=dmo", "`+experiment=demo`"),
        ("generator=sd_tiny,vae_tny", "`generator=vae_tiny`"),
    ],
)
def test_a_config_typo_names_the_closest_key(override, suggestion):
    with pytest.raises(UserError) as raised:
        check_overrides(str(CONF), "config", ["logger=none", override])
    message = str(raised.value)
    assert f"did you mean {suggestion}?" in message and "\n" not in message
    assert "+generater" not in message and "To append" not in message


@pytest.mark.parametrize(
    ("config", "override", "message"),
    [
        (
            "config",
            "experiment=demo",
            "`experiment=demo`: no experiment is chosen by default; add one with `+experiment=demo`",
        ),
        (
            "config",
            "model=resnet50",
            "`model=resnet50`: model is a setting of python -m aigen.detect, not of python run.py",
        ),
        (
            "detect",
            "generator=sd",
            "`generator=sd`: generator is a setting of python run.py, not of python -m aigen.detect",
        ),
        (
            "detect",
            "+experiment=demo",
            "`+experiment=demo`: experiment is a setting of python run.py, not of python -m aigen.detect",
        ),
    ],
)
def test_a_group_the_command_does_not_choose_is_one_line(config, override, message):
    """A forgotten `+`, or the other command's group (one conf/ serves both), was a Hydra traceback."""
    with pytest.raises(UserError) as raised:
        check_overrides(str(CONF), config, [override])
    assert str(raised.value) == message


def test_valid_overrides_and_sweeps_pass_the_check():
    check_overrides(str(CONF), "config", ["generator=sd_tiny,vae_tiny", "size=64", "+experiment=demo", "--cfg", "job"])
    check_overrides(str(CONF), "detect", ["task=matrix", "model=resnet_tiny", "logger=none", "output_dir=run"])


def test_a_config_typo_is_exit_code_2_with_one_line(tmp_path):
    result = run_cli("generater=sd_tiny", "logger=none", cwd=tmp_path)
    assert_one_line_error(result, "did you mean `generator=sd_tiny`?")
    assert result.returncode == 2 and "+generater" not in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_generators_settings_are_checked_before_diffusers_is_imported():
    """diffusers and transformers take seconds to import: building a generator (where its settings are checked)
    imports neither, so a mistake is reported at once; loading its model does."""
    generators = ["sd", "sd_tiny", "unclip_tiny", "flux_fill_tiny", "flux_redux_tiny", "qwen_edit_tiny", "sd35_tiny"]
    code = f"""
import sys
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
import aigen.factory
with initialize_config_dir(config_dir={str(CONF)!r}, version_base=None):
    for name in {generators}:
        instantiate(compose("config", overrides=["generator=" + name]).generator)
print(sorted(module for module in ("diffusers", "transformers") if module in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "[]\n", result.stdout + result.stderr


def test_the_detector_cli_imports_no_transformers_model_before_its_checks():
    """`python -m aigen.detect` checks its settings before a model is built: transformers' model code (seconds to
    import) comes with the first model, so a mistake is reported at once."""
    code = """
import sys
import aigen.detect
from aigen.detector.model import build_resnet
def models():
    return sorted(m for m in sys.modules if m.startswith(("transformers.models.", "transformers.modeling_utils")))
before = models()
build_resnet("basic", [1], [8])
print(before, "transformers.modeling_utils" in models())
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == "[] True\n", result.stdout + result.stderr
