"""python -m aigen.report: the site of two tiny datasets made by run.py, their audits and a detector matrix and
evaluation, checked as files and in a real headless Chromium opened from disk (file://); a 100,000-pair dataset
becomes small pages."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from detect_data import blur, make_dataset_dir, noise, photo_crops
from hydra import compose, initialize_config_dir
from PIL import Image, ImageChops

from aigen import audit
from aigen.detector.evaluate import evaluate
from aigen.detector.matrix import matrix
from aigen.errors import UserError
from aigen.report.cli import REPORT_RECORD, ReportOptions, main, report
from aigen.report.pages import pair_entry
from conftest import CONF, run_cli

SHOTS = Path("/tmp/aigen-report-shots")  # the screenshots, also kept here for a person to look at
PAGE_SIZE = 5  # 16 pairs: 4 pages, and the vae pairs start inside a chunk
DETECT = ["model=resnet_tiny", "image_size=64", "batch_size=16", "epochs=1", "val_fraction=0.2", "test_fraction=0.2"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """sd_tiny and vae_tiny over the bundled photos (run.py, one multirun), their audits, and a detector matrix
    and an evaluation with perturbations on two hand-made sets."""
    root = tmp_path_factory.mktemp("report-inputs")
    result = run_cli(
        "-m",
        "source=samples",
        "generator=sd_tiny,vae_tiny",
        "size=64",
        "logger=none",
        f"data_dir={root / 'data'}",
        env={"OMP_NUM_THREADS": "1"},  # 8 tiny images: one thread, which a busy shared CPU does not slow 30 times
    )
    assert result.returncode == 0, result.stderr[-2000:]
    datasets = sorted((root / "data" / "processed").iterdir())
    assert [d.name.split("-")[1] for d in datasets] == ["sd_tiny", "vae_tiny"]
    audits = [root / f"audit-{d.name}" for d in datasets]
    for dataset, folder in zip(datasets, audits, strict=True):
        audit.run(dataset, folder, "none", "aigen")

    photos = photo_crops(40, seed=2)
    sets = [make_dataset_dir(root / name, photos, fake, name) for name, fake in (("noise", noise), ("blur", blur))]
    both = ",".join(map(str, sets))
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        options = [*DETECT, "workers=0", "logger=none", f"eval_sets=[{both}]"]
        matrix(compose("detect", [*options, "task=matrix", f"train_sets=[{both}]", f"output_dir={root / 'matrix'}"]))
        checkpoint = root / "matrix" / "runs" / "noise" / "best.pt"
        evaluate(
            compose(
                "detect",
                [
                    *options,
                    "task=eval",
                    f"checkpoint={checkpoint}",
                    "perturb=[jpeg75,blur1]",
                    f"output_dir={root / 'eval'}",
                ],
            )
        )
    return {"datasets": datasets, "audits": audits, "detector": [root / "matrix", root / "eval"]}


@pytest.fixture(scope="module")
def site(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "site"
    options = ReportOptions(
        inputs["datasets"], out, inputs["audits"], inputs["detector"], page_size=PAGE_SIZE, title="aigen demo report"
    )
    report(options)
    return out


def chunk_pairs(path: Path) -> list[list]:
    """The pairs of one chunk file: `aigenChunk(N,[...]);`."""
    match = re.fullmatch(r"aigenChunk\((\d+),(.*)\);\n", path.read_text(encoding="utf-8"), re.DOTALL)
    assert match and path.name == f"{int(match[1]):05d}.js"
    return json.loads(match[2])


def page_index(site: Path) -> dict:
    html = (site / "index.html").read_text(encoding="utf-8")
    return json.loads(re.search(r'<script id="pairs-index" type="application/json">(.*?)</script>', html)[1])


def test_site_files_point_at_every_pair_and_hold_the_card_audit_and_detector_outputs(site, inputs):
    index = page_index(site)
    assert index["pairs"] == 16 and index["chunks"] == 4 and index["pageSize"] == PAGE_SIZE
    assert [(s["generator"], s["alignment"], s["count"]) for s in index["segments"]] == [
        ("sd_tiny", "semantic", 8),
        ("vae_tiny", "pixel", 8),
    ]
    pairs = [pair for number in range(4) for pair in chunk_pairs(site / "pairs" / f"{number:05d}.js")]
    for segment in index["segments"]:
        dataset = index["datasets"][segment["dataset"]]
        for pair in pairs[segment["start"] : segment["start"] + segment["count"]]:
            for path in pair[1:3]:
                # relative to the site, not copied: the dataset dir's own file
                image = (site / unquote(dataset["base"]) / unquote(path)).resolve()
                assert image.is_file() and image.is_relative_to(inputs["datasets"][segment["dataset"]])
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "<img" not in html.split('id="pairs"')[1].split('id="audit"')[0]  # the pairs come from the chunks
    for words in ("Settings that decide the pixels", "guidance_scale", "Random weights", "skipped photos", "licence"):
        assert words in html
    assert html.count("audit/") >= 2 and "Cue classifier" in html
    assert 'src="detector/1/matrix.png"' in html and 'src="detector/2/robustness.png"' in html
    assert html.count('src="detector/2/confusion_') == 2
    record = json.loads((site / REPORT_RECORD).read_text())
    assert [d["pairs"] for d in record["datasets"]] == [8, 8]


def test_100000_pairs_become_small_pages(tmp_path):
    dataset = tmp_path / "big"
    for half in ("original", "ai"):
        (dataset / half).mkdir(parents=True)
        Image.new("RGB", (8, 8), "gray").save(dataset / half / "photo.jpg")
    rows = (
        {
            "id": f"photo-{number:06d}",
            "original": "original/photo.jpg",
            "ai": "ai/photo.jpg",
            "generator": "vae" if number % 3 else "sd",
            "alignment": "pixel" if number % 3 else "semantic",
            "seed": 2**63 - number,
        }
        for number in range(100_000)
    )
    (dataset / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (dataset / "dataset.json").write_text(json.dumps({"fingerprint": "0", "content": {"generator": "vae"}}))
    skips = [{"id": f"small-{number}", "stage": "load", "reason": "smaller than 64 px"} for number in range(3)]
    (dataset / "failures.jsonl").write_text("".join(json.dumps(row) + "\n" for row in skips))

    index, _ = report(ReportOptions([dataset], tmp_path / "site"))

    chunks = sorted((tmp_path / "site" / "pairs").iterdir())
    assert index["chunks"] == len(chunks) == math.ceil(100_000 / 48)
    assert max(chunk.stat().st_size for chunk in chunks) < 8_000
    html = (tmp_path / "site" / "index.html").read_text()
    assert len(html) < 40_000 and "<td>load: smaller than 64 px</td><td>3</td>" in html and "100,000 pairs" in html
    assert [(s["generator"], s["count"]) for s in index["segments"]] == [("sd", 33_334), ("vae", 66_666)]
    ids = [pair[0] for chunk in chunks for pair in chunk_pairs(chunk)]
    assert len(ids) == len(set(ids)) == 100_000
    assert chunk_pairs(chunks[0])[1][4] == str(2**63 - 3)


def test_pair_paths_are_urls_and_seeds_text():
    row = {
        "id": "a #1",
        "original": "original/a #1.jpg",
        "ai": "ai/a #1.jpg",
        "source": "x/a #1.png",
        "seed": 2**64 - 1,
    }
    assert pair_entry(row) == ["a #1", "original/a%20%231.jpg", "ai/a%20%231.jpg", "x/a #1.png", str(2**64 - 1)]
    assert pair_entry({**row, "seed": None})[4] is None


def test_copy_puts_the_images_in_the_site(inputs, tmp_path):
    out = tmp_path / "published"
    report(ReportOptions(inputs["datasets"][:1], out, copy=True))
    moved = shutil.move(out, tmp_path / "elsewhere")
    index = page_index(moved)
    assert index["datasets"][0]["base"] == f"images/{inputs['datasets'][0].name}"
    for pair in chunk_pairs(moved / "pairs" / "00000.js"):
        for path in pair[1:3]:
            copied = moved / "images" / inputs["datasets"][0].name / unquote(path)
            assert copied.read_bytes() == (inputs["datasets"][0] / unquote(path)).read_bytes()


def test_a_name_with_url_characters_and_a_site_behind_a_symlink_still_point_at_their_files(inputs, tmp_path):
    """A `#` in a dataset's name ends a URL's path unless quoted; a browser resolves `..` against the site's path as
    typed, so relative image paths start from it, not from where a symlink leads."""
    dataset = Path(shutil.copytree(inputs["datasets"][1], tmp_path / "run#2"))
    audit.run(dataset, tmp_path / "audit#2", "none", "aigen")
    real = tmp_path / "real" / "deeper" / "still"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    site = tmp_path / "link" / "site"
    index, _ = report(ReportOptions([dataset], site, [tmp_path / "audit#2"]))
    html = (site / "index.html").read_text()
    assert 'src="audit/run%232/audit.png"' in html and (site / "audit" / "run#2" / "audit.png").is_file()
    base = unquote(index["datasets"][0]["base"])
    assert Path(os.path.normpath(os.path.join(site, base))) == dataset  # `..` as text, from the typed path
    assert "n/a (random weights: no trained model)" in html  # the licence vae_tiny's config names


def test_bad_options_are_one_line_before_anything_is_written(inputs, tmp_path, capsys):
    dataset = inputs["datasets"][0]
    cases = [
        ([str(dataset), "--out", str(tmp_path / "a"), "--page-size", "0"], "--page-size 0 must be between"),
        ([str(tmp_path), "--out", str(tmp_path / "b")], "is not an aigen dataset dir"),
        ([str(dataset), "--out", str(dataset / "site")], "is inside the dataset dir"),
        ([str(dataset), "--out", str(tmp_path / "c"), "--detector", str(tmp_path)], "has neither matrix.csv"),
        ([str(dataset), "--out", str(tmp_path / "d"), "--audit", str(tmp_path)], "has no audit.json"),
        (["--out", str(tmp_path / "e")], "nothing to report"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not any(tmp_path.iterdir())
    assert not (dataset / "site").exists()

    out = tmp_path / "site"
    assert main([str(dataset), "--out", str(out)]) == 0
    assert main([str(dataset), "--out", str(out)]) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert main([str(dataset), "--out", str(out), "--overwrite"]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="not an aigen report"):
        report(ReportOptions([dataset], tmp_path / "mine", overwrite=True))


# In a real browser: Debian's chromium driven by Selenium, the site opened from disk.


def browser():
    """Headless Chromium from the system's packages, or a skip that says how to install it."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no chromium/chromedriver on PATH: apt-get install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    options.add_argument("--force-device-scale-factor=1")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def broken_images(driver) -> list[str]:
    """Every <img> with a source that did not load (naturalWidth 0), after waiting for them all to finish."""
    return driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const images = [...document.querySelectorAll("img[src]")];
        Promise.all(images.map((image) => image.decode().catch(() => null))).then(() =>
          done(images.filter((image) => !image.naturalWidth).map((image) => image.getAttribute("src"))));
        """
    )


def page_png(driver, element_id: str | None = None) -> bytes:
    """The whole page, or one element of it, beyond the window's height."""
    clip = driver.execute_script(
        """
        const box = arguments[0] ? document.getElementById(arguments[0]).getBoundingClientRect() : null;
        const page = document.documentElement;
        return box ? {x: box.left + scrollX, y: box.top + scrollY, width: box.width, height: box.height, scale: 1}
                   : {x: 0, y: 0, width: page.scrollWidth, height: page.scrollHeight, scale: 1};
        """,
        element_id,
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    return base64.b64decode(shot["data"])


def save_shot(data: bytes, name: str, tmp_path: Path) -> None:
    """Into the test's tmp dir and into SHOTS."""
    SHOTS.mkdir(exist_ok=True)
    for folder in (tmp_path, SHOTS):
        (folder / name).write_bytes(data)


def test_site_in_headless_chromium_from_disk(site, inputs, tmp_path):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser()
    try:
        wait = WebDriverWait(driver, 15)

        def showing(label: str) -> list:
            """The pair cards, once the pager says `label`."""
            try:
                wait.until(lambda d: d.find_element(By.ID, "page-label").text == label)
            except TimeoutException:
                pytest.fail(f"the pager says {driver.find_element(By.ID, 'page-label').text!r}, not {label!r}")
            return driver.find_elements(By.CSS_SELECTOR, "#pair-grid .pair")

        # 1. Opened from disk: pairs from the chunk files, no console error, no broken image.
        driver.get(site.joinpath("index.html").as_uri())
        assert len(showing("page 1 of 4 · 16 pairs")) == PAGE_SIZE
        assert broken_images(driver) == []
        save_shot(page_png(driver), "report-overview.png", tmp_path)

        # 2. A dataset card's link filters by its dataset; the filters: generator, then alignment; a page that
        # spans two chunks.
        vae = inputs["datasets"][1].name
        driver.find_element(By.CSS_SELECTOR, f'#dataset-{vae} a[href^="#pairs?"]').click()
        cards = showing("page 1 of 2 · 8 pairs")
        assert {card.get_attribute("data-dataset") for card in cards} == {vae}
        Select(driver.find_element(By.ID, "filter-dataset")).select_by_value("")
        showing("page 1 of 4 · 16 pairs")
        Select(driver.find_element(By.ID, "filter-generator")).select_by_value("vae_tiny")
        cards = showing("page 1 of 2 · 8 pairs")
        assert len(cards) == PAGE_SIZE and {card.get_attribute("data-generator") for card in cards} == {"vae_tiny"}
        driver.find_element(By.ID, "page-next").click()
        cards = showing("page 2 of 2 · 8 pairs")
        assert len(cards) == 3 and {card.get_attribute("data-alignment") for card in cards} == {"pixel"}
        assert broken_images(driver) == []
        Select(driver.find_element(By.ID, "filter-alignment")).select_by_value("semantic")
        assert showing("page 1 of 1 · 0 pairs") == []
        Select(driver.find_element(By.ID, "filter-generator")).select_by_value("")
        cards = showing("page 1 of 2 · 8 pairs")
        assert {card.get_attribute("data-generator") for card in cards} == {"sd_tiny"}
        assert "alignment=semantic" in driver.current_url
        save_shot(page_png(driver, "pairs"), "report-pairs.png", tmp_path)

        # 3. A click compares the pair at full size; the difference view is |AI - original| per pixel.
        first_id = cards[0].find_element(By.CSS_SELECTOR, ".id").text
        cards[0].click()
        wait.until(lambda d: d.find_element(By.ID, "compare").get_attribute("open") is not None)
        Select(driver.find_element(By.ID, "compare-zoom")).select_by_value("1")
        assert broken_images(driver) == []
        assert driver.find_element(By.ID, "compare-title").text == first_id
        shot = driver.find_element(By.ID, "compare-difference").screenshot_as_png
        shown = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"), dtype=np.int16)
        dataset = inputs["datasets"][0]
        with (
            Image.open(dataset / "original" / f"{first_id}.jpg") as a,
            Image.open(dataset / "ai" / f"{first_id}.jpg") as b,
        ):
            original = np.asarray(a.convert("RGB"), dtype=np.int16)
            expected = np.asarray(ImageChops.difference(a.convert("RGB"), b.convert("RGB")), dtype=np.int16)
        assert shown.shape == expected.shape == (64, 64, 3)
        assert np.abs(shown - expected).mean() < 2 < np.abs(shown - original).mean()
        Select(driver.find_element(By.ID, "compare-zoom")).select_by_value("auto")
        Select(driver.find_element(By.ID, "compare-gain")).select_by_value("4")
        save_shot(driver.get_screenshot_as_png(), "report-compare.png", tmp_path)
        driver.find_element(By.ID, "compare-next").click()
        assert driver.find_element(By.ID, "compare-title").text != first_id
        assert console_errors(driver) == []
    finally:
        driver.quit()
