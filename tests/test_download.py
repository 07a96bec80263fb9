"""./download_indoor.sh against a local HTTP server: fresh, idempotent, resumed, failing and helpful runs.

No internet: every test serves a small generated `indoorCVPR_09.tar` (real JPEGs in `Images/<category>/`) from a
`ThreadingHTTPServer` on 127.0.0.1 that honours `Range` (206 + Content-Range), since resuming relies on it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from conftest import ROOT, manifest_rows, run_cli

SCRIPT = ROOT / "download_indoor.sh"
CATEGORIES = {"bedroom": "astronaut", "kitchen": "coffee", "livingroom": "chelsea"}
PER_CATEGORY = 2
N_IMAGES = len(CATEGORIES) * PER_CATEGORY


def jpeg_bytes(pixels: np.ndarray, variant: int) -> bytes:
    """A 128x96 JPEG (>= 96 px, aspect 4:3) of a scikit-image photo; `variant` makes each file distinct."""
    image = Image.fromarray(pixels).convert("RGB")
    if variant % 2:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buffer = io.BytesIO()
    image.resize((128, 96), Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def make_tar(top: str = "Images/") -> bytes:
    """`<top><category>/<category>_<i>.jpg`, like indoorCVPR_09.tar (whose top level is `Images/`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        folders = [top.rstrip("/")] if top else []
        folders += [f"{top}{category}" for category in CATEGORIES]
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for category, photo in CATEGORIES.items():
            pixels = getattr(skdata, photo)()
            for i in range(PER_CATEGORY):
                payload = jpeg_bytes(pixels, i)
                info = tarfile.TarInfo(f"{top}{category}/{category}_{i}.jpg")
                info.size, info.mode = len(payload), 0o644
                tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def good_tar() -> bytes:
    return make_tar()


class Server:
    """Serves `body` at /indoorCVPR_09.tar; records (path, Range) of every request.

    status: the HTTP status to answer with instead of the file (e.g. 404).
    cut: how many responses to break off half-way through the body (full Content-Length sent, then the
    connection is closed), to simulate a dropped connection.
    """

    def __init__(self, body: bytes, status: int = 200, cut: int = 0) -> None:
        self.body, self.status, self.cut = body, status, cut
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/indoorCVPR_09.tar"

    def tar_requests(self) -> list[str | None]:
        """The Range header of each request for the tar (None: a request for the whole file)."""
        return [rng for path, rng in self.requests if path.endswith(".tar")]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                with server.lock:
                    server.requests.append((self.path, rng))
                    cut = server.cut > 0
                    server.cut -= cut
                if server.status != 200 or not self.path.endswith(".tar"):
                    self.send_error(server.status if server.status != 200 else 404)
                    return
                body, size = server.body, len(server.body)
                start, end = 0, size - 1
                if rng:
                    match = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
                    if not match:
                        self.send_error(400)
                        return
                    start = int(match[1])
                    end = min(int(match[2]), size - 1) if match[2] else size - 1
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                chunk = body[start : end + 1]
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Content-Length", str(len(chunk)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if cut:  # half the body, then drop the connection
                    self.wfile.write(chunk[: len(chunk) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        return Handler


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(body: bytes, status: int = 200, cut: int = 0) -> Server:
        servers.append(Server(body, status, cut))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def script_env(**overrides: str) -> dict[str, str]:
    """The test session's environment (conftest's hermetic settings) minus any user INDOOR_*/DATA_DIR."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDOOR_") and k != "DATA_DIR"}
    env["INDOOR_RETRY_DELAY"] = "0"
    env.update(overrides)
    return env


def run_script(*args: str, cwd: Path = ROOT, timeout: int = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=script_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == lines[0], result.stderr
    return lines[0]


def assert_nothing_left(data: Path) -> None:
    """No final folder, and no temporary extraction folder next to where it would be."""
    assert not (data / "raw" / "indoor").exists()
    assert not list((data / "raw").glob(".indoor-tmp*"))


def tree(root: Path) -> dict[str, list[str]]:
    return {
        category.name: sorted(p.name for p in category.iterdir())
        for category in sorted(root.iterdir())
        if category.is_dir()
    }


EXPECTED_TREE = {c: [f"{c}_{i}.jpg" for i in range(PER_CATEGORY)] for c in CATEGORIES}


def assert_complete(data: Path) -> None:
    root = data / "raw" / "indoor"
    assert tree(root) == EXPECTED_TREE
    assert (root / ".complete").read_text().startswith(f"images={N_IMAGES}\n")
    assert not list((data / "raw").glob(".indoor-tmp*"))
    downloads = data / "downloads"
    assert not list(downloads.glob("*.tar")) and not list(downloads.glob("*.part"))


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


def test_help_names_the_variables_and_the_destination():
    result = run_script("--help", timeout=10)
    assert result.returncode == 0, result.stderr
    for word in ("DATA_DIR", "INDOOR_URL", "INDOOR_RETRIES", "INDOOR_RETRY_DELAY", "raw/indoor", "15,620"):
        assert word in result.stdout


def test_unknown_argument_is_refused():
    result = run_script("--frobnicate", timeout=10)
    assert result.returncode == 2
    assert error_lines(result)


def test_fresh_download_feeds_the_app_then_a_rerun_does_nothing(tmp_path, serve, good_tar):
    server = serve(good_tar)
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url)
    assert result.returncode == 0, result.stderr
    assert_complete(data)
    assert f"found {N_IMAGES} images in {len(CATEGORIES)} categories" in result.stdout
    assert "warning" not in result.stderr  # no expected count for a non-official address
    assert server.tar_requests() == [None]

    # The app finds it with DATA_DIR alone: source=indoor reads ${DATA_DIR}/raw/indoor.
    out = tmp_path / "out"
    cli = run_cli(
        "source=indoor",
        "generator=sd_tiny",
        "size=64",
        "logger=none",
        "limit=3",
        f"dataset_dir={out}",
        env={"DATA_DIR": str(data)},
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    rows = manifest_rows(out)
    assert len(rows) == 3
    assert {row["category"] for row in rows} <= set(CATEGORIES)
    assert len(list((out / "original").glob("*.jpg"))) == 3
    assert len(list((out / "ai").glob("*.jpg"))) == 3

    # A second run: already there, exit 0, no request for the tar.
    again = run_script(DATA_DIR=str(data), INDOOR_URL=server.url, timeout=20)
    assert again.returncode == 0, again.stderr
    assert "already there" in again.stdout
    assert server.tar_requests() == [None]
    assert_complete(data)


def test_relative_data_dir_is_relative_to_the_current_directory(tmp_path, serve, good_tar):
    server = serve(good_tar)
    result = run_script(cwd=tmp_path, DATA_DIR="mydata", INDOOR_URL=server.url)
    assert result.returncode == 0, result.stderr
    assert_complete(tmp_path / "mydata")


def test_tar_without_the_images_level(tmp_path, serve):
    server = serve(make_tar(top=""))
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url)
    assert result.returncode == 0, result.stderr
    assert_complete(data)


def test_dropped_connection_is_resumed(tmp_path, serve, good_tar):
    server = serve(good_tar, cut=1)
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url)
    assert result.returncode == 0, result.stderr
    assert_complete(data)
    first, second = server.tar_requests()
    assert first is None
    assert second == f"bytes={len(good_tar) // 2}-"  # continued where the first attempt stopped
    assert "resuming after" in result.stdout


def test_interrupted_run_is_resumed_by_the_next_run(tmp_path, serve, good_tar):
    flaky = serve(good_tar, cut=100)  # every response breaks off half-way
    data = tmp_path / "data"
    failed = run_script(DATA_DIR=str(data), INDOOR_URL=flaky.url, INDOOR_RETRIES="2")
    line = assert_one_line_error(failed)
    assert "after 2 attempts" in line and "run again to resume" in line
    assert_nothing_left(data)
    part = data / "downloads" / "indoorCVPR_09.tar.part"
    kept = part.stat().st_size
    half = len(good_tar) // 2
    assert kept == half + (len(good_tar) - half) // 2  # half, then half of the rest

    # The next run continues from the kept bytes (same address).
    flaky.cut = 0
    result = run_script(DATA_DIR=str(data), INDOOR_URL=flaky.url)
    assert result.returncode == 0, result.stderr
    assert_complete(data)
    assert flaky.tar_requests()[-1] == f"bytes={kept}-"


@pytest.mark.parametrize("downloader", ["curl", "wget"])
def test_complete_partial_file_is_used(tmp_path, serve, good_tar, downloader):
    """A run stopped between the last byte and the rename: the server answers 416 to the resume."""
    if shutil.which(downloader) is None:
        pytest.skip(f"{downloader} is not installed")
    server = serve(good_tar)
    data = tmp_path / "data"
    downloads = data / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "indoorCVPR_09.tar.part").write_bytes(good_tar)
    (downloads / "indoorCVPR_09.tar.part.url").write_text(server.url + "\n")
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url, INDOOR_DOWNLOADER=downloader)
    assert result.returncode == 0, result.stderr
    assert server.tar_requests() == [f"bytes={len(good_tar)}-"]
    assert_complete(data)


def test_stale_extraction_folder_is_removed(tmp_path, serve, good_tar):
    """A run killed while extracting leaves its temporary folder; the next run removes it and finishes."""
    server = serve(good_tar)
    data = tmp_path / "data"
    stale = data / "raw" / ".indoor-tmp.AbC123" / "x" / "Images" / "bedroom"
    stale.mkdir(parents=True)
    (stale / "half.jpg").write_bytes(b"\xff\xd8")
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url)
    assert result.returncode == 0, result.stderr
    assert "removing the unfinished extraction" in result.stdout
    assert_complete(data)


def test_partial_file_from_another_address_is_discarded(tmp_path, serve, good_tar):
    server = serve(good_tar)
    data = tmp_path / "data"
    downloads = data / "downloads"
    downloads.mkdir(parents=True)
    (downloads / "indoorCVPR_09.tar.part").write_bytes(b"x" * 1000)
    (downloads / "indoorCVPR_09.tar.part.url").write_text("http://example.invalid/other.tar\n")
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url)
    assert result.returncode == 0, result.stderr
    assert_complete(data)
    assert server.tar_requests() == [None]


def test_http_404_fails_at_once_with_one_line(tmp_path, serve, good_tar):
    server = serve(good_tar, status=404)
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url)
    line = assert_one_line_error(result)
    assert "404" in line and server.url in line
    assert server.tar_requests() == [None]  # not retried
    assert_nothing_left(data)
    assert not (data / "downloads" / "indoorCVPR_09.tar.part").exists()


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
def test_broken_tar_is_deleted_and_refetched_next_time(tmp_path, serve, good_tar, kind):
    body = good_tar[: len(good_tar) // 2] if kind == "truncated" else b"<html>not a tar</html>\n" * 200
    broken = serve(body)
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=broken.url)
    line = assert_one_line_error(result)
    assert "not a valid tar archive" in line
    assert_nothing_left(data)
    assert not list((data / "downloads").glob("indoorCVPR_09.tar*"))

    good = serve(good_tar)  # a rerun (here from a fixed server) fetches the whole file again
    result = run_script(DATA_DIR=str(data), INDOOR_URL=good.url)
    assert result.returncode == 0, result.stderr
    assert good.tar_requests() == [None]
    assert_complete(data)


def test_count_mismatch_warns(tmp_path, serve, good_tar):
    server = serve(good_tar)
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url, INDOOR_EXPECTED_IMAGES="15620")
    assert result.returncode == 0, result.stderr
    assert f"warning: expected 15620 images, found {N_IMAGES}" in result.stderr
    assert_complete(data)


def test_foreign_folder_at_the_destination_is_not_touched(tmp_path, serve, good_tar):
    server = serve(good_tar)
    data = tmp_path / "data"
    (data / "raw" / "indoor").mkdir(parents=True)
    (data / "raw" / "indoor" / "mine.txt").write_text("keep")
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url, timeout=20)
    assert "was not completed by this script" in assert_one_line_error(result)
    assert (data / "raw" / "indoor" / "mine.txt").read_text() == "keep"
    assert server.tar_requests() == []


def path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH holding links to every command of the current PATH except `missing`."""
    bin_dir = tmp_path / f"bin-without-{'-'.join(missing)}"
    bin_dir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = bin_dir / entry.name
            if entry.name in missing or target.exists() or not os.access(entry.path, os.X_OK):
                continue
            target.symlink_to(entry.path)
    return str(bin_dir)


def test_no_downloader_is_a_clear_error(tmp_path, serve, good_tar):
    server = serve(good_tar)
    data = tmp_path / "data"
    path = path_without(tmp_path, "curl", "wget")
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url, PATH=path, timeout=20)
    line = assert_one_line_error(result)
    assert "curl" in line and "wget" in line
    assert_nothing_left(data)
    assert server.tar_requests() == []


@pytest.mark.skipif(shutil.which("wget") is None, reason="wget is not installed")
def test_wget_resumes_when_curl_is_missing(tmp_path, serve, good_tar):
    server = serve(good_tar, cut=1)
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url, PATH=path_without(tmp_path, "curl"))
    assert result.returncode == 0, result.stderr
    assert "with wget" in result.stdout
    assert_complete(data)
    assert server.tar_requests()[-1] == f"bytes={len(good_tar) // 2}-"


@pytest.mark.skipif(shutil.which("wget") is None, reason="wget is not installed")
def test_wget_404_is_one_line(tmp_path, serve, good_tar):
    server = serve(good_tar, status=404)
    data = tmp_path / "data"
    result = run_script(DATA_DIR=str(data), INDOOR_URL=server.url, INDOOR_DOWNLOADER="wget")
    line = assert_one_line_error(result)
    assert "404" in line and server.url in line
    assert server.tar_requests() == [None]
    assert_nothing_left(data)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean():
    result = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
