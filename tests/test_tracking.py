"""W&B tracking (offline, into tmp dirs), the gallery, preview.png and multirun sweeps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import skimage.data

from aigen.factory import make_dataset
from aigen.tracking import redact
from conftest import compose_config, run_cli

SECRET = "sk-test-SECRET"


def offline_runs(root: Path) -> list[Path]:
    return sorted(root.rglob("offline-run-*"))


def run_record_bytes(run: Path) -> bytes:
    return next(run.glob("run-*.wandb")).read_bytes()


def gallery_table(run: Path) -> dict:
    [path] = run.glob("files/media/table/gallery_*.table.json")
    return json.loads(path.read_text())


def staged_tables(staging: Path) -> list[dict]:
    """The gallery tables as W&B stages them for upload, with their image references."""
    tables = []
    for path in staging.iterdir():
        data = path.read_bytes()
        if data.startswith(b'{"_type": "table"'):
            tables.append(json.loads(data))
    return tables


def tiny_wandb_args(out: Path, *extra: str) -> list[str]:
    return ["source=samples", "generator=sd_tiny", "size=64", "logger=wandb", f"dataset_dir={out}", *extra]


def test_offline_run_logs_gallery_images_and_config(tmp_path, wandb_env):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_cli(*tiny_wandb_args(tmp_path / "out", "gallery_size=5"), cwd=cwd, env=wandb_env)
    assert result.returncode == 0, result.stderr
    [run] = offline_runs(cwd / "outputs")  # inside the Hydra run dir
    table = gallery_table(run)
    assert table["columns"] == ["id", "original", "ai", "category", "seed", "guidance_scale", "steps", "generator"]
    assert len(table["data"]) == 5
    staging = Path(wandb_env["WANDB_DATA_DIR"]) / "artifacts" / "staging"
    tables = staged_tables(staging)
    assert tables and all(len(staged["data"]) == 5 for staged in tables)
    for row in tables[0]["data"]:
        assert row[1]["_type"] == row[2]["_type"] == "image-file"
    staged_jpegs = [p for p in staging.iterdir() if p.read_bytes().startswith(b"\xff\xd8")]
    assert len(staged_jpegs) >= 2 * 5  # every original and AI image of the gallery, as media
    record = run_record_bytes(run)
    assert b"guidance_scale" in record and b"sd_tiny" in record and b"make-dataset" in record
    preview = next((cwd / "outputs").rglob("preview.png"))
    assert f"preview: {preview}" in result.stdout
    assert not list((tmp_path / "out").rglob("*.png"))  # the dataset dir stays a clean imagefolder


def test_runs_with_different_seeds_show_the_same_source_photos(tmp_path, wandb_env):
    galleries = []
    for seed in (0, 1):
        cwd = tmp_path / f"cwd{seed}"
        cwd.mkdir()
        args = tiny_wandb_args(tmp_path / f"out{seed}", f"seed={seed}", "gallery_size=4")
        assert run_cli(*args, cwd=cwd, env=wandb_env).returncode == 0
        [run] = offline_runs(cwd / "outputs")
        galleries.append([row[0] for row in gallery_table(run)["data"]])
    assert galleries[0] == galleries[1] and len(galleries[0]) == 4


def test_two_by_two_multirun_makes_four_datasets_in_one_group(tmp_path, wandb_env):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_cli(
        "-m", "source=samples", "generator=sd_tiny", "size=64", "limit=2", "logger=wandb",
        f"data_dir={tmp_path / 'data'}", "guidance_scale=1,3", "generator.steps=2,3",
        cwd=cwd, env=wandb_env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # steps is not in the default name: its second value's dataset is versioned beside the first's.
    datasets = sorted(p.name for p in (tmp_path / "data" / "processed").iterdir())
    assert len(datasets) == 4
    pairs = zip(datasets[::2], datasets[1::2], strict=True)
    for guidance, (plain, versioned) in zip(("1.0", "3.0"), pairs, strict=True):
        assert plain == f"samples-sd_tiny-64-g{guidance}-s0" and re.fullmatch(rf"{plain}-[0-9a-f]{{8}}", versioned)
    runs = offline_runs(cwd / "multirun")
    assert len(runs) == 4
    sweep_dir = next((cwd / "multirun").iterdir())
    group = f"sweep-{(Path('multirun') / sweep_dir.name / next(sweep_dir.iterdir()).name).as_posix()}"
    group = group.replace("/", "-")
    for run in runs:
        assert group.encode() in run_record_bytes(run)


def test_no_secret_in_any_file(tmp_path, wandb_env):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = wandb_env | {"OPENAI_API_KEY": SECRET}
    result = run_cli(*tiny_wandb_args(tmp_path / "out"), cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    for path in [*cwd.rglob("*"), *(tmp_path / "out").rglob("*"), *tmp_path.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_default_run_without_credentials_goes_offline_without_prompting(tmp_path, wandb_env):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = wandb_env | {"WANDB_MODE": None, "WANDB_API_KEY": None}
    args = ["source=samples", "generator=sd_tiny", "size=64", "limit=2", f"dataset_dir={tmp_path / 'out'}"]
    result = run_cli(*args, cwd=cwd, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "no credentials found, logging offline" in result.stdout
    assert len(offline_runs(cwd / "outputs")) == 1


def test_sweep_experiment_declares_eight_jobs():
    cfg = compose_config("+experiment=guidance_sweep", hydra=True)
    assert cfg.hydra.sweeper.params == {"guidance_scale": "1,3,5,7", "seed": "0,1"}
    assert cfg.hydra.mode.name == "MULTIRUN"


def test_bad_logger_mode_is_a_one_line_error(tmp_path, wandb_env):
    result = run_cli(*tiny_wandb_args(tmp_path / "out", "logger.mode=sometimes"), env=wandb_env)
    assert result.returncode == 2 and "logger.mode='sometimes'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_sweep_job_is_a_failed_wandb_run_and_the_others_still_run(tmp_path, wandb_env):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "bad.jpg").write_bytes(b"not an image")
    (photos / "good.png").write_bytes((Path(skimage.data.__file__).parent / "coffee.png").read_bytes())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_cli(
        "-m", "source=folder", f"source.root={photos}", "generator=sd_tiny", "size=64", "logger=wandb",
        f"data_dir={tmp_path / 'data'}", "max_failure_ratio=0.1,0.9",
        cwd=cwd, env=wandb_env,
    )  # fmt: skip
    assert result.returncode != 0  # the sweep reports its failed job
    assert "max_failure_ratio=0.1" in result.stderr
    runs = offline_runs(cwd / "multirun")
    assert len(runs) == 2  # the job after the failed one ran too
    failed, passed = sorted(runs, key=lambda run: run.parent.parent.name)  # job 0 (ratio 0.1), job 1 (ratio 0.9)
    assert run_exit_code(failed) == 1 and run_exit_code(passed) == 0


def run_exit_code(run: Path) -> int:
    """The exit code W&B recorded when the run finished (from its debug log)."""
    log = (run / "logs" / "debug.log").read_text()
    [code] = re.findall(r"got exitcode: (\d+)", log)[-1:]
    return int(code)


def test_credentials_in_a_url_are_never_logged():
    config = {"generator": {"base_url": "http://user:hunter2@127.0.0.1:8/v1?key=abc&x=1", "model": "m"}, "l": ["a@b"]}
    assert redact(config) == {
        "generator": {"base_url": "http://<redacted>@127.0.0.1:8/v1?key=<redacted>&x=1", "model": "m"},
        "l": ["a@b"],
    }


def test_a_disabled_wandb_run_says_nothing_was_logged(tmp_path, capsys):
    cfg = compose_config("source=samples", "generator=identity", "generator.gen_size=64", "size=64", "limit=2",
                         "logger=wandb", "logger.mode=disabled", f"dataset_dir={tmp_path / 'out'}")  # fmt: skip
    make_dataset(cfg, run_dir=tmp_path / "run")
    assert "dataset artifact" not in capsys.readouterr().out
