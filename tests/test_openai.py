"""OpenAI generators against a real local HTTP server that speaks the two image endpoints: no network, no money.

The server (`FakeOpenAI`, a `fake_api.FakeApi`) parses each multipart request, records it (fields, the decoded PNG,
times, requests in flight at once) and answers with a PNG and an `x-request-id`, or with whatever a test scripts.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hydra.utils import instantiate
from PIL import Image

from aigen.errors import SkipImage, UserError
from aigen.factory.prepare import Preparer
from aigen.generators.base import Variation
from aigen.generators.openai_images import encode_png, one_line
from aigen.pairing import JpegSettings, Pairing, PairProcessor
from aigen.preprocess import ImageLoader
from aigen.sources import SourceItem
from conftest import ai_images, assert_one_line_error, compose_config, failures, manifest_rows, run_cli
from fake_api import FakeApi

KEY = "sk-test-SECRET"
SAMPLES = 8  # photos in source=samples
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's legacy variation call
OPENAI_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_LOG")


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """(form fields, files as (content type, bytes)) of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert message.is_multipart()
    fields, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.get_filename() is not None:
            files[name] = (part.get_content_type(), payload)
        else:
            fields[name] = payload.decode()
    return fields, files


def png_b64(side: int, seed: int) -> str:
    image = Image.new("RGB", (side, side), ((seed * 37) % 256, (seed * 91) % 256, 128))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def api_error(status: int, message: str, code: str | None = None, param: str | None = None, **headers):
    return (
        status,
        headers,
        {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}},
    )


class FakeOpenAI(FakeApi):
    """The two image endpoints (multipart uploads); `script(request) -> (status, headers, body) | None` decides the
    answers other than a PNG."""

    url_path = "/v1"

    def parse(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[bytes | None, dict]:
        fields, files = parse_multipart(handler.headers["Content-Type"], body)
        photo = files["image"][1] if "image" in files else None
        return photo, {"authorization": handler.headers.get("Authorization"), "fields": fields, "files": files}

    def answer(self, request: dict, answer_id: str, scripted: tuple | None) -> tuple[int, dict, dict]:
        if scripted is not None:
            status, headers, payload = scripted
        else:
            side = int(request["fields"].get("size", "64x64").split("x")[0])
            image = {"b64_json": png_b64(side, len(self.issued_ids))}
            status, headers, payload = 200, {}, {"created": int(time.time()), "data": [image]}
        return status, headers | {"x-request-id": answer_id}, payload


@pytest.fixture(autouse=True)
def no_real_openai(monkeypatch):
    """Nothing from the developer's environment may reach a test (or send a request to the real API)."""
    for name in OPENAI_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def run(tmp_path: Path, server: FakeOpenAI, *overrides: str, key: str | None = KEY, generator: str = "dalle2"):
    """The CLI on the 8 sample photos at 64 px, talking to `server`; returns (result, dataset dir, cwd)."""
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    env = {"OPENAI_BASE_URL": server.url} | ({"OPENAI_API_KEY": key} if key else {})
    result = run_cli(
        "source=samples",
        "size=64",
        "logger=none",
        f"dataset_dir={out}",
        f"generator={generator}",
        "generator.max_retries=2",
        "generator.timeout=30",
        *overrides,
        cwd=cwd,
        env=env,
        timeout=120,
    )
    return result, out, cwd


def test_dalle2_sends_what_the_api_requires_and_records_each_pair(tmp_path, server):
    result, out, cwd = run(tmp_path, server)
    assert result.returncode == 0, result.stderr
    assert "8 images from dall-e-2 at 512x512" in result.stdout and "$0.14" in result.stdout

    assert len(server.requests) == SAMPLES and len(server.photos) == SAMPLES
    for request in server.requests:
        assert request["path"] == "/v1/images/variations"
        assert request["authorization"] == f"Bearer {KEY}"  # the key from the environment, in the header only
        assert request["fields"] == {"model": "dall-e-2", "n": "1", "size": "512x512", "response_format": "b64_json"}
        content_type, png = request["files"]["image"]
        assert content_type == "image/png" and len(png) < 4_000_000
        with Image.open(io.BytesIO(png)) as sent:
            assert sent.format == "PNG" and sent.size == (512, 512)

    images = ai_images(out)
    assert len(images) == SAMPLES
    for path in images:
        with Image.open(path) as image:
            assert image.size == (64, 64)
    rows = manifest_rows(out)
    assert len(rows) == SAMPLES
    for row in rows:
        assert (row["generator"], row["model"], row["api_size"], row["size"]) == ("dalle2", "dall-e-2", "512x512", 64)
        assert row["returned_size"] == "512x512" and row["retries"] == 0
        assert "base_url" not in row
    assert sorted(row["request_id"] for row in rows) == sorted(server.issued_ids)

    # The key is in no file the run wrote: dataset dir, Hydra's outputs/ (logs, .hydra/) in the run's cwd.
    written = [path for root in (out, cwd) for path in root.rglob("*") if path.is_file()]
    assert any(path.name == "run.log" for path in written) or any(".hydra" in path.parts for path in written)
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in result.stdout + result.stderr


def test_429_and_500_are_retried_after_the_delay_the_server_asks(tmp_path, server):
    def script(request):
        if request["attempt"] == 0 and request["photo_index"] == 0:
            return api_error(429, "Rate limit reached for requests", "rate_limit_exceeded", retry_after="1")
        if request["attempt"] == 0 and request["photo_index"] == 1:
            return api_error(500, "The server had an error", retry_after_ms="700")
        return None

    server.script = script
    result, out, _ = run(tmp_path, server)
    assert result.returncode == 0, result.stderr
    assert len(ai_images(out)) == SAMPLES and not failures(out)
    assert len(server.requests) == SAMPLES + 2
    for index, status, wait in ((0, 429, 1.0), (1, 500, 0.7)):
        first, second = server.attempts(index)
        assert (first["status"], second["status"]) == (status, 200)
        # The server stamps `end` after flushing its answer, a moment after the client starts waiting.
        assert second["start"] - first["end"] >= wait - 0.05
    rows = {row["request_id"]: row for row in manifest_rows(out)}
    assert sorted(row["retries"] for row in rows.values()) == [0] * (SAMPLES - 2) + [1, 1]


def test_retries_run_out_and_the_photo_is_skipped(tmp_path, server):
    server.script = lambda request: api_error(503, "overloaded") if request["photo_index"] == 0 else None
    result, out, _ = run(tmp_path, server, "generator.max_retries=1")
    assert result.returncode == 0, result.stderr
    assert len(server.attempts(0)) == 2 and len(ai_images(out)) == SAMPLES - 1
    [failure] = failures(out)
    assert failure["stage"] == "generate" and "HTTP 503: overloaded" in failure["reason"]
    assert "gave up after 1 retries" in failure["reason"]


def test_a_rejected_photo_is_recorded_and_the_run_goes_on(tmp_path, server):
    message = "Your request was rejected as a result of our safety system."
    server.script = lambda request: (
        api_error(400, message, "content_policy_violation") if request["photo_index"] == 1 else None
    )
    result, out, _ = run(tmp_path, server)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == SAMPLES  # a 400 is not retried
    [failure] = failures(out)
    assert failure["stage"] == "generate" and failure["reason"] == f"HTTP 400: {message}"  # alike failures group
    assert failure["request_id"] in server.issued_ids  # in the row, for a support ticket
    done = {row["id"] for row in manifest_rows(out)}
    assert len(done) == SAMPLES - 1 and failure["id"] not in done
    assert len(ai_images(out)) == SAMPLES - 1


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_refused_key_stops_the_run_at_once(tmp_path, server, concurrency):
    # A compatible server may echo the key: it must not reach the terminal, a log or failures.jsonl.
    server.hold = 0.2
    server.script = lambda request: api_error(401, f"Incorrect API key provided: {KEY}.", "invalid_api_key")
    result, out, cwd = run(tmp_path, server, f"generator.concurrency={concurrency}", "batch_size=8")
    assert_one_line_error(result, "HTTP 401", "OPENAI_API_KEY")
    # Only the requests already in flight when the first 401 came back; none after it.
    assert len(server.requests) == 1 if concurrency == 1 else 1 <= len(server.requests) <= concurrency
    assert not ai_images(out) and not manifest_rows(out)
    assert KEY not in result.stdout + result.stderr
    for path in [p for root in (out, cwd) for p in root.rglob("*") if p.is_file()]:
        assert KEY.encode() not in path.read_bytes(), path


def test_requests_in_flight_never_exceed_concurrency(tmp_path, server):
    server.hold = 0.2
    result, out, _ = run(tmp_path, server, "generator.concurrency=2", "batch_size=8")
    assert result.returncode == 0, result.stderr
    assert server.max_in_flight == 2
    assert len(ai_images(out)) == SAMPLES


def test_a_run_above_max_cost_refuses_before_sending(tmp_path, server):
    result, out, _ = run(tmp_path, server, "generator.max_cost=0.1")
    assert_one_line_error(result, "estimated cost $0.14", "generator.max_cost=$0.10", "nothing was sent")
    assert server.requests == [] and not out.exists()


def test_dry_run_prints_the_plan_and_sends_nothing_without_a_key(tmp_path, server):
    result, out, _ = run(tmp_path, server, "generator.dry_run=true", "generator.max_cost=0.1", key=None)
    assert result.returncode == 0, result.stderr
    assert "8 images from dall-e-2 at 512x512" in result.stdout and "estimated cost $0.14" in result.stdout
    assert "ABOVE max_cost" in result.stdout and "dry run: nothing was sent" in result.stdout
    assert server.requests == [] and not out.exists()  # no dir, no dataset.json, no lock


def test_a_missing_key_is_one_line_and_nothing_is_sent(tmp_path, server):
    result, out, _ = run(tmp_path, server, key=None)
    assert_one_line_error(result, "OPENAI_API_KEY is not set", "generator.dry_run=true")
    assert server.requests == [] and not out.exists()


def test_a_quota_error_mid_batch_keeps_the_images_that_came_back(tmp_path, server):
    quota = api_error(429, "You exceeded your current quota", "insufficient_quota")
    server.script = lambda request: quota if request["photo_index"] == 3 else None
    result, out, _ = run(tmp_path, server, "generator.concurrency=1", "batch_size=8")
    assert_one_line_error(result, "insufficient_quota")
    assert len(server.requests) == 4  # the quota error is not retried, and nothing is sent after it
    rows = manifest_rows(out)
    assert len(rows) == 3 and len(ai_images(out)) == 3  # paid for: written
    assert sorted(row["request_id"] for row in rows) == server.issued_ids[:3]
    assert not failures(out)  # the quota is not the photo's fault


@pytest.mark.parametrize("concurrency", [1, 4])
def test_no_network_stops_after_a_few_photos(tmp_path, concurrency):
    with socket.socket() as bound:  # bound, never listening: connections are refused, and no test can take it
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        closed = FakeOpenAI.__new__(FakeOpenAI)
        closed.url = f"http://127.0.0.1:{port}/v1"
        result, out, _ = run(tmp_path, closed, "generator.max_retries=1", f"generator.concurrency={concurrency}")
        assert_one_line_error(result, f"cannot reach 127.0.0.1:{port}", "photos in a row failed to connect")
        assert len(failures(out)) < SAMPLES and not ai_images(out)


def test_a_rerun_pays_only_for_what_is_missing(tmp_path, server):
    result, out, _ = run(tmp_path, server)
    assert result.returncode == 0 and len(server.requests) == SAMPLES
    result, _, _ = run(tmp_path, server)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == SAMPLES and "0 to generate" in result.stdout
    ai_images(out)[0].unlink()
    result, _, _ = run(tmp_path, server)
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == SAMPLES + 1
    assert "1 to generate" in result.stdout and "estimated cost $0.02" in result.stdout
    assert len(ai_images(out)) == SAMPLES


def test_gpt_image_edit_carries_model_prompt_and_settings(tmp_path, server):
    cfg = compose_config("generator=gpt_image").generator
    result, out, _ = run(
        tmp_path,
        server,
        "limit=2",
        "generator.input_fidelity=high",
        f"generator.base_url={server.url}",  # the config's base_url wins over $OPENAI_BASE_URL
        generator="gpt_image",
    )
    assert result.returncode == 0, result.stderr
    assert f"2 images from {cfg.model} at 1024x1024, quality medium" in result.stdout
    assert len(server.requests) == 2
    for request in server.requests:
        assert request["path"] == "/v1/images/edits"
        assert request["fields"] == {
            "model": cfg.model,
            "prompt": cfg.prompt,
            "n": "1",
            "size": "1024x1024",
            "quality": "medium",
            "input_fidelity": "high",
            "output_format": "png",
        }
        with Image.open(io.BytesIO(request["files"]["image"][1])) as sent:
            assert sent.format == "PNG" and sent.size == (1024, 1024)
    rows = manifest_rows(out)
    assert len(rows) == 2 and len(ai_images(out)) == 2
    for row in rows:
        assert (row["generator"], row["model"], row["quality"], row["input_fidelity"]) == (
            "gpt_image",
            cfg.model,
            "medium",
            "high",
        )
        assert row["prompt"] == cfg.prompt and row["request_id"] in server.issued_ids


# -- in process: the generator objects themselves ---------------------------------------------------------------


def make_generator(name: str, *overrides: str):
    return instantiate(compose_config(f"generator={name}", *overrides).generator)


def photo(seed: int = 0, side: int = 300) -> Image.Image:
    return Image.effect_noise((side, side), 40 + seed).convert("RGB")


@pytest.mark.parametrize("name", ["dalle2", "gpt_image"])
def test_configs_compose_price_and_describe_without_endpoint_or_key(name, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    generator = make_generator(name, "generator.base_url=http://user:pw@example.invalid/v1")
    described = generator.describe()
    assert described["generator"] == name and described["model"] and described["api_size"]
    assert "size" not in described  # that key is the factory's written size
    assert "example.invalid" not in json.dumps(described) and KEY not in json.dumps(described)
    assert generator.price_per_image() > 0
    assert "example.invalid" in generator.plan(10) and "pw" not in generator.plan(10)
    if name == "gpt_image":
        assert {"prompt", "quality", "input_fidelity"} <= described.keys()


def test_unknown_price_and_bad_size_are_user_errors():
    with pytest.raises(UserError, match="no price for gpt-image-9 / 1024x1024 / medium"):
        make_generator("gpt_image", "generator.model=gpt-image-9").plan(1)
    assert "$0.00" in make_generator("gpt_image", "generator.model=gpt-image-9", "generator.price=0").plan(3)
    with pytest.raises(UserError, match="is not a price"):
        make_generator("dalle2", "generator.price=cheap").plan(1)
    with pytest.raises(UserError, match="api_size"):
        make_generator("dalle2", "generator.api_size=640x640").describe()
    with pytest.raises(UserError, match="square"):
        make_generator("gpt_image", "generator.api_size=1536x1024").describe()
    with pytest.raises(UserError, match="concurrency"):
        make_generator("gpt_image", "generator.concurrency=0").describe()
    for option in ("generator.max_cost=nan", "generator.price=nan"):  # nan passed every comparison with a cost
        with pytest.raises(UserError, match="nan"):
            make_generator("gpt_image", option).plan(1_000_000)


@pytest.mark.parametrize("quality", ["auto", "null"])
def test_a_quality_the_server_chooses_is_priced_as_the_most_it_may_choose(quality):
    """`auto` and not sent (null) let the server choose: the budget counts them as high."""
    high = make_generator("gpt_image", "generator.quality=high").price_per_image()
    assert make_generator("gpt_image", f"generator.quality={quality}").price_per_image() == high
    assert "(priced as high)" in make_generator("gpt_image", f"generator.quality={quality}").plan(1)


def test_a_bad_setting_is_one_line_before_the_dataset_dir_exists(tmp_path, server):
    result, out, _ = run(tmp_path, server, "generator.api_size=640x640")
    assert_one_line_error(result, "generator.api_size='640x640'", "512x512")
    assert server.requests == [] and not out.exists()


@pytest.mark.parametrize(
    ("name", "answer", "fragments"),
    [
        ("dalle2", api_error(404, "The model `dall-e-2` does not exist", "model_not_found"), ["generator=gpt_image"]),
        ("gpt_image", api_error(404, "The model does not exist", "model_not_found"), ["retired", "generator.model="]),
        ("dalle2", api_error(403, "You are not allowed to sample from this model"), ["HTTP 403"]),
        ("dalle2", api_error(429, "You exceeded your current quota", "insufficient_quota"), ["insufficient_quota"]),
        ("gpt_image", api_error(400, "Invalid size", "invalid_value", param="size"), ["setting 'size'"]),
    ],
)
def test_errors_no_photo_would_pass_stop_the_run(name, answer, fragments, server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.script = lambda request: answer
    generator = make_generator(name, f"generator.base_url={server.url}", "generator.concurrency=1")
    generator.load()
    with pytest.raises(UserError) as raised:
        generator.generate([generator.prepare(photo(i)) for i in range(4)], [0, 1, 2, 3])
    message = str(raised.value)
    assert "\n" not in message and KEY not in message
    for fragment in fragments:
        assert fragment in message
    assert len(server.requests) == 1  # not retried, and the other three photos were never sent


def test_gpt_image_omits_unset_options(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    generator = make_generator(
        "gpt_image", f"generator.base_url={server.url}", "generator.quality=null", "generator.api_size=256x256"
    )
    generator.load()
    [result] = generator.generate([generator.prepare(photo())], [123])
    assert isinstance(result, Variation) and result.image.size == (256, 256)
    fields = server.requests[0]["fields"]
    assert "input_fidelity" not in fields and "quality" not in fields and "response_format" not in fields
    assert fields["size"] == "256x256"


def test_a_timeout_is_retried_then_skipped(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.hold = 1.0
    generator = make_generator(
        "dalle2", f"generator.base_url={server.url}", "generator.timeout=0.3", "generator.max_retries=1"
    )
    generator.load()
    [result] = generator.generate([generator.prepare(photo())], [0])
    assert isinstance(result, SkipImage) and "timed out after 0.3 s" in result.reason
    assert "gave up after 1 retries" in result.reason and "2 request(s) timed out" in result.reason
    assert "may have been billed" in result.reason
    assert len(server.requests) == 2 and generator.stats() == {"possibly_billed_timeouts": 2}


def test_png_is_shrunk_under_the_upload_limit():
    data = encode_png(photo(side=600), 512, max_bytes=200_000)
    assert len(data) < 200_000
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.width == image.height < 512
    with Image.open(io.BytesIO(encode_png(photo(side=300), 512, max_bytes=4_000_000))) as image:
        assert image.size == (512, 512)


def test_messages_are_scrubbed_of_keys():
    assert one_line(f"bad key {KEY}\n and sk-proj-abc123 here", KEY) == "bad key <OPENAI_API_KEY> and sk-*** here"


def test_a_photo_that_cannot_be_uploaded_is_skipped_with_its_reason(tmp_path):
    """The upload PNG is made on the factory's worker threads; a photo it cannot fit is a recorded skip."""
    generator = make_generator("dalle2")
    generator.max_upload_bytes = 100  # no PNG of a photo fits: the real encoder gives up at 64 px
    photo(0).save(tmp_path / "photo.png")
    preparer = Preparer(
        ImageLoader(min_side=64), generator, PairProcessor(Pairing(), JpegSettings(95, "4:2:0"), 64, 64), 1
    )
    try:
        [[prepared]] = list(preparer.stream([SourceItem("photo", tmp_path / "photo.png", "photo.png", "")], 1))
    finally:
        preparer.close()
    assert prepared.skip is not None and prepared.skip.stage == "generate"
    assert "cannot encode the photo as a PNG under 100 bytes" in prepared.skip.reason


def test_dalle2_on_the_official_endpoint_warns_that_it_was_retired(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    official = make_generator("dalle2", "generator.dry_run=true").plan(4)
    assert official.startswith("warning: OpenAI's API retired DALL-E 2") and "generator=gpt_image" in official
    compatible = make_generator("dalle2", "generator.dry_run=true", "generator.base_url=http://127.0.0.1:9/v1").plan(4)
    assert "retired" not in compatible and compatible.startswith("dalle2: 4 images")


def test_images_of_another_size_in_a_row_stop_the_run_in_one_line(tmp_path, server):
    """The same model or server every time: after a few, each further request would be paid for nothing."""
    small = (200, {}, {"created": 0, "data": [{"b64_json": png_b64(128, 0)}]})
    server.script = lambda request: small
    result, out, _ = run(tmp_path, server, "generator.api_size=256x256", "generator.concurrency=1", "batch_size=8")
    assert_one_line_error(result, "another size: 128x128 for the 256x256 asked for (3 in a row from 127.0.0.1")
    assert len(server.requests) == 3


def test_an_image_of_another_size_is_a_recorded_skip(tmp_path, server):
    """The API promised 256x256 and returned 128x128 for one photo: that photo is skipped with its reason (its
    original half went through 256 px; a cropped, upscaled AI half would pair unlike paths), the run goes on."""
    small = (200, {}, {"created": 0, "data": [{"b64_json": png_b64(128, 0)}]})
    server.script = lambda request: small if request["photo_index"] == 0 else None
    result, out, _ = run(tmp_path, server, "generator.api_size=256x256")
    assert result.returncode == 0, result.stderr
    assert "7 new pairs" in result.stdout and "1 failed" in result.stdout
    [failure] = failures(out)
    assert failure["stage"] == "generate" and failure["request_id"] in server.issued_ids
    assert failure["reason"] == "the API returned an image of another size: 128x128 for the 256x256 asked for"
