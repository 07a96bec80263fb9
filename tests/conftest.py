"""Shared fixtures: Hydra compose in-process, the CLI in a subprocess, a tmp cache for the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from aigen.dataset import Shard
from aigen.selection import sample
from aigen.sources import SourceItem

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TINY = ["source=samples", "generator=sd_tiny", "size=64", "logger=none"]


def pytest_configure(config: pytest.Config) -> None:
    """No hub access, no W&B network, set before the test modules are collected: huggingface_hub and datasets read
    HF_HUB_OFFLINE once, when they are first imported (a test module importing diffusers), and a hub id that is not
    cached would otherwise be retried over the network for 20 s."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["WANDB_MODE"] = "disabled"


@pytest.fixture(scope="session", autouse=True)
def hermetic_env(tmp_path_factory) -> None:
    """One tiny-model cache for the session."""
    os.environ["AIGEN_CACHE"] = str(tmp_path_factory.mktemp("aigen-cache"))


def compose_config(*overrides: str, hydra: bool = False) -> DictConfig:
    """The app's config as `run.py` composes it (with the `hydra` node when `hydra` is true)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


@pytest.fixture
def tiny_cfg(tmp_path):
    """The smallest real job as a config, writing into tmp_path/out; extra overrides per call."""

    def make(*overrides: str, dataset_dir: Path | None = None) -> DictConfig:
        cfg = compose_config(*TINY, *overrides)
        with open_dict(cfg):
            cfg.dataset_dir = str(dataset_dir or tmp_path / "out")
        return cfg

    return make


def cli_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "run.py"), *args]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300):
    """`python run.py ARGS` as a user types it, from a fresh folder so Hydra's outputs/ lands there.

    `env` adds variables to the test environment; a value of None removes one.
    """
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        cli_command(*args),
        cwd=cwd or tempfile.mkdtemp(prefix="aigen-cli-"),
        env={key: value for key, value in merged.items() if value is not None},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def manifest_rows(dataset_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(dataset_dir.glob("manifest*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines()]
    return rows


def file_bytes(dataset_dir: Path) -> dict[str, bytes]:
    """Every pair image by relative path: the content to compare between runs."""
    return {
        path.relative_to(dataset_dir).as_posix(): path.read_bytes()
        for folder in ("original", "ai")
        for path in sorted((dataset_dir / folder).glob("*.jpg"))
    }


def shard_part(items: list[SourceItem], limit: int, shard: Shard) -> list[SourceItem]:
    """The photos a shard handles: its part of the seeded sample, as the factory's plan selects them."""
    return [item for item in sample(items, limit, 0) if shard.owns(item.id)]


@pytest.fixture
def wandb_env(tmp_path):
    """W&B offline with every one of its folders in tmp_path: nothing reaches the home folder or the network."""
    folders = {
        name: tmp_path / name.lower() for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")
    }
    for folder in folders.values():
        folder.mkdir()
    return {name: str(folder) for name, folder in folders.items()} | {"WANDB_MODE": "offline", "HOME": str(tmp_path)}


# -- the paid API generators' CLI runs (test_openai, test_gemini) ------------------------------------------------


def ai_images(out: Path) -> list[Path]:
    return sorted((out / "ai").glob("*.jpg"))


def failures(out: Path) -> list[dict]:
    return [json.loads(line) for path in out.glob("failures*.jsonl") for line in path.read_text().splitlines()]


def assert_one_line_error(result, *fragments: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
