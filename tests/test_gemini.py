"""Gemini image editing against a real local HTTP server that speaks `generateContent`: no network, no money.

The server (`FakeGemini`, a `fake_api.FakeApi`) parses each JSON request the google-genai SDK sends (prompt, inline
PNG, image config), records it and answers with an inline PNG and a `responseId`, or with whatever a test scripts.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from hydra.utils import instantiate
from PIL import Image

from aigen.errors import SkipImage, UserError
from aigen.factory import make_dataset
from aigen.generators.base import Variation
from aigen.generators.gemini import quota_exhausted
from aigen.generators.paid_api import one_line
from conftest import ai_images, assert_one_line_error, compose_config, failures, manifest_rows, run_cli
from fake_api import FakeApi

KEY = "AIzaTestKey-SECRET-0123456789"
SAMPLES = 8  # photos in source=samples
GEMINI_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI")
MODEL = compose_config("generator=gemini_image").generator.model


def png_b64(side: int, seed: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), ((seed * 37) % 256, (seed * 91) % 256, 128)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def api_error(code: int, status: str, message: str, *details: dict) -> tuple[int, dict]:
    return code, {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


def refusal(finish_reason: str, text: str | None = None) -> tuple[int, dict]:
    parts = [{"text": text}] if text else []
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish_reason, "index": 0}
    return 200, {"candidates": [candidate], "responseId": "refused"}


QUOTA_PER_DAY = api_error(
    429,
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota, please check your plan and billing details.",
    {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel", "quotaValue": "100"}],
    },
)
QUOTA_PER_MINUTE = api_error(
    429,
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota.",
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "RequestsPerMinute"}]},
)


class FakeGemini(FakeApi):
    """`generateContent` (JSON with inline images); `script(request) -> (status, body) | None` decides the answers
    other than an image."""

    id_prefix = "resp"
    protocol_version = "HTTP/1.1"

    def parse(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[bytes | None, dict]:
        request = json.loads(body)
        [content] = request["contents"]
        texts = [part["text"] for part in content["parts"] if "text" in part]
        # Proto JSON: the SDK may spell a field inlineData or inline_data, mimeType or mime_type.
        inline = [part.get("inlineData") or part["inline_data"] for part in content["parts"] if "text" not in part]
        png = base64.urlsafe_b64decode(inline[0]["data"])  # the SDK sends URL-safe base64
        return png, {
            "key": handler.headers.get("x-goog-api-key"),
            "texts": texts,
            "mime_types": [part.get("mimeType") or part["mime_type"] for part in inline],
            "png": png,
            "config": request.get("generationConfig"),
        }

    def answer(self, request: dict, answer_id: str, scripted: tuple | None) -> tuple[int, dict, dict]:
        if scripted is not None:
            status, payload = scripted
            return status, {}, payload
        side = Image.open(io.BytesIO(request["png"])).width
        part = {"inlineData": {"mimeType": "image/png", "data": png_b64(side, len(self.issued_ids))}}
        candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
        usage = {"promptTokenCount": 1200, "candidatesTokenCount": 1120, "totalTokenCount": 2320}
        body = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": MODEL, "responseId": answer_id}
        return 200, {}, body


@pytest.fixture(autouse=True)
def no_real_gemini(monkeypatch):
    """Nothing from the developer's environment may reach a test (or send a request to the real API)."""
    for name in GEMINI_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    fake = FakeGemini()
    yield fake
    fake.close()


def run(tmp_path: Path, server: FakeGemini, *overrides: str, key: str | None = KEY, wandb: dict | None = None):
    """The CLI on the 8 sample photos at 64 px, 512 px requests to `server`; returns (result, dataset dir, cwd).
    `wandb`: the environment of an offline W&B run (else no tracking)."""
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    result = run_cli(
        "source=samples",
        "size=64",
        f"logger={'wandb' if wandb else 'none'}",
        f"dataset_dir={out}",
        "generator=gemini_image",
        "generator.image_size=512",
        f"generator.base_url={server.url}",
        "generator.max_retries=2",
        "generator.retry_delay=0.1",
        "generator.timeout=30",
        *overrides,
        cwd=cwd,
        env={"GEMINI_API_KEY": key} | (wandb or {}),
        timeout=120,
    )
    return result, out, cwd


def assert_key_in_no_file(result, *roots: Path) -> None:
    """The key is in no file the run wrote (dataset dir, Hydra's outputs/ with run.log) and not on the terminal."""
    written = [path for root in roots for path in root.rglob("*") if path.is_file()]
    assert any(path.name == "run.log" for path in written)
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in result.stdout + result.stderr


def test_edits_each_photo_and_records_model_prompt_and_request(tmp_path, server):
    result, out, cwd = run(tmp_path, server)
    assert result.returncode == 0, result.stderr
    cfg = compose_config("generator=gemini_image").generator
    plan = f"gemini_image: 8 images from {MODEL} at 512 via 127.0.0.1:{server.httpd.server_port}, estimated cost $0.37"
    assert plan in result.stdout

    assert len(server.requests) == SAMPLES and len(server.photos) == SAMPLES
    for request in server.requests:
        assert re.fullmatch(f"/v1(beta)?/models/{MODEL}:generateContent", request["path"])
        assert request["key"] == KEY  # from the environment, in the header only
        assert request["texts"] == [cfg.prompt] and request["mime_types"] == ["image/png"]
        assert request["config"] == {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "1:1", "imageSize": "512"},
        }
        with Image.open(io.BytesIO(request["png"])) as sent:
            assert sent.format == "PNG" and sent.size == (512, 512)

    assert len(ai_images(out)) == SAMPLES
    rows = manifest_rows(out)
    assert len(rows) == SAMPLES
    for row in rows:
        assert (row["generator"], row["model"], row["image_size"], row["size"]) == ("gemini_image", MODEL, "512", 64)
        assert row["prompt"] == cfg.prompt and row["model_version"] == MODEL
        assert row["returned_size"] == "512x512" and row["retries"] == 0 and "seed" not in row
        assert row["usage"] == {"prompt_tokens": 1200, "output_tokens": 1120, "total_tokens": 2320}
        assert "base_url" not in row
    assert sorted(row["request_id"] for row in rows) == sorted(server.issued_ids)
    assert_key_in_no_file(result, out, cwd)


def test_dry_run_prints_the_plan_and_a_real_run_needs_a_key(tmp_path, server):
    result, out, _ = run(tmp_path, server, "generator.dry_run=true", "generator.max_cost=0.1", key=None)
    assert result.returncode == 0, result.stderr
    assert "8 images from" in result.stdout and "estimated cost $0.37" in result.stdout
    assert "ABOVE max_cost" in result.stdout and "dry run: nothing was sent" in result.stdout
    assert server.requests == [] and not out.exists()

    result, out, _ = run(tmp_path, server, key=None)  # no longer a dry run: the key is missing
    assert_one_line_error(result, "GOOGLE_API_KEY or GEMINI_API_KEY is not set", "generator.dry_run=true")
    assert server.requests == [] and not out.exists()


def test_a_run_above_max_cost_refuses_before_sending(tmp_path, server):
    result, out, _ = run(tmp_path, server, "generator.max_cost=0.3")
    assert_one_line_error(result, "estimated cost $0.37", "generator.max_cost=$0.30", "nothing was sent")
    assert server.requests == [] and not out.exists()


def test_a_503_is_retried_by_the_sdk_and_the_key_stays_out_of_its_log_and_wandb(tmp_path, server, wandb_env):
    # The SDK logs each retry with the server's answer: a server echoing the key must not put it in run.log; nor may
    # the key reach the W&B run (its config, logs and records).
    server.script = lambda request: (
        api_error(503, "UNAVAILABLE", f"The model is overloaded ({KEY})")
        if request["photo_index"] == 0 and request["attempt"] == 0
        else None
    )
    result, out, cwd = run(tmp_path, server, wandb=wandb_env)
    assert result.returncode == 0, result.stderr
    assert len(ai_images(out)) == SAMPLES and not failures(out)
    assert [r["status"] for r in server.attempts(0)] == [503, 200]
    assert sorted(row["retries"] for row in manifest_rows(out)) == [0] * (SAMPLES - 1) + [1]
    run_log = next(cwd.rglob("run.log")).read_text()
    assert "Retrying" in run_log and "<GEMINI_API_KEY>" in run_log
    [wandb_run] = (cwd / "outputs").rglob("offline-run-*")  # inside the Hydra run dir
    assert list(wandb_run.rglob("*.wandb"))
    assert_key_in_no_file(result, tmp_path)  # the W&B run included


def test_a_refused_key_stops_the_run_with_one_line(tmp_path, server):
    server.script = lambda request: api_error(401, "UNAUTHENTICATED", f"Request had invalid credentials {KEY}")
    result, out, cwd = run(tmp_path, server, "generator.concurrency=1")
    assert_one_line_error(result, "HTTP 401 UNAUTHENTICATED", "GEMINI_API_KEY was refused")
    assert len(server.requests) == 1  # not retried, and nothing is sent after it
    assert not ai_images(out) and not manifest_rows(out)
    assert_key_in_no_file(result, out, cwd)


def test_a_used_up_quota_stops_at_once_and_keeps_what_came_back(tmp_path, server):
    server.script = lambda request: QUOTA_PER_DAY if request["photo_index"] == 3 else None
    result, out, _ = run(tmp_path, server, "generator.concurrency=1", "batch_size=8")
    assert_one_line_error(result, "HTTP 429", "quota", "is used up")
    assert len(server.requests) == 4  # the daily quota is not retried, and nothing is sent after it
    rows = manifest_rows(out)
    assert len(rows) == 3 and len(ai_images(out)) == 3  # paid for: written
    assert sorted(row["request_id"] for row in rows) == server.issued_ids[:3]
    assert not failures(out)  # the quota is not the photo's fault


def test_a_safety_refusal_is_a_recorded_skip_and_a_malformed_answer_is_no_refusal(tmp_path, server):
    """The reason is the same for alike failures (dataset.json counts them together); what differs per photo (the
    request id, what the model said) is in the failure's row. An answer with no candidate, or an image of another
    size than asked for, is a skip but not a refusal."""
    blocked = (200, {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "blocked"})
    wrong_size = {"inlineData": {"mimeType": "image/png", "data": png_b64(100, 0)}}
    answers = {
        1: refusal("IMAGE_SAFETY"),
        2: blocked,
        3: (200, {"responseId": "empty"}),
        4: (200, {"candidates": [{"content": {"parts": [wrong_size]}, "finishReason": "STOP"}], "responseId": "w"}),
        5: refusal("STOP", "I can't edit this photo."),
    }
    server.script = lambda request: answers.get(request["photo_index"])
    result, out, _ = run(tmp_path, server, "max_failure_ratio=1")
    assert result.returncode == 0, result.stderr
    assert len(server.requests) == SAMPLES  # a refusal is an answer: not retried
    rows = sorted(failures(out), key=lambda failure: failure["reason"])
    assert [(row["reason"], row["request_id"], row.get("model_said")) for row in rows] == [
        ("malformed answer: no candidate with an image or a finish reason", "empty", None),
        ("refused: no image in the response (finish reason IMAGE_SAFETY)", "refused", None),
        ("refused: no image in the response (finish reason STOP)", "refused", "I can't edit this photo."),
        ("refused: prompt blocked (PROHIBITED_CONTENT)", "blocked", None),
        ("the API returned an image of another size: 100x100 for the 512x512 asked for", "w", None),
    ]
    assert len(manifest_rows(out)) == len(ai_images(out)) == SAMPLES - 5
    assert "refusals: 3" in result.stdout
    [run_record] = json.loads((out / "dataset.json").read_text())["runs"]
    assert run_record["generator"]["refusals"] == 3 and run_record["failed"] == 5


# -- in process: the generator object itself ---------------------------------------------------------------------


def make_generator(*overrides: str):
    return instantiate(compose_config("generator=gemini_image", *overrides).generator)


def photo(seed: int = 0, side: int = 300) -> Image.Image:
    return Image.effect_noise((side, side), 40 + seed).convert("RGB")


def loaded(server: FakeGemini, monkeypatch, *overrides: str):
    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    generator = make_generator(
        f"generator.base_url={server.url}", "generator.image_size=512", "generator.retry_delay=0", *overrides
    )
    generator.load()
    return generator


def test_config_composes_prices_and_describes_without_endpoint_or_key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    generator = make_generator("generator.base_url=http://user:pw@example.invalid")
    described = generator.describe()
    assert described["generator"] == "gemini_image" and described["model"] == MODEL
    assert {"prompt", "image_size", "aspect_ratio"} <= described.keys() and "size" not in described
    assert "example.invalid" not in json.dumps(described) and KEY not in json.dumps(described)
    assert generator.price_per_image() > 0 and generator.gen_size == 1024
    assert "example.invalid" in generator.plan(10) and "pw" not in generator.plan(10)
    assert "SynthID" in generator.license


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="generator.image_size='1k' must be one of 512, 1K, 2K, 4K"):
        make_generator("generator.image_size=1k").describe()
    with pytest.raises(UserError, match="no price for gemini-9-image / 1K"):
        make_generator("generator.model=gemini-9-image").plan(1)
    with pytest.raises(UserError, match="prompt is empty"):
        make_generator("generator.prompt=''").describe()
    with pytest.raises(UserError, match="GOOGLE_API_KEY or GEMINI_API_KEY is not set"):
        make_generator().load()
    assert make_generator("generator.model=gemini-2.5-flash-image", "generator.image_size=null").gen_size == 1024


@pytest.mark.parametrize(
    ("answer", "fragments"),
    [
        (
            api_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"},
            ),
            ["HTTP 400 INVALID_ARGUMENT", "the key in GOOGLE_API_KEY was refused"],
        ),
        (api_error(403, "PERMISSION_DENIED", "Permission denied"), ["HTTP 403 PERMISSION_DENIED", "may not use"]),
        (api_error(404, "NOT_FOUND", "models/x is not found"), ["HTTP 404", "generator.model="]),
        (QUOTA_PER_DAY, ["HTTP 429", "is used up"]),
    ],
)
def test_errors_no_photo_would_pass_stop_the_run(answer, fragments, server, monkeypatch):
    server.script = lambda request: answer
    generator = loaded(server, monkeypatch, "generator.concurrency=1")
    with pytest.raises(UserError) as raised:
        generator.generate([generator.prepare(photo(i)) for i in range(4)], [0, 1, 2, 3])
    message = str(raised.value)
    assert "\n" not in message and KEY not in message
    for fragment in fragments:
        assert fragment in message
    assert len(server.requests) == 1  # not retried, and the other three photos were never sent


def test_a_rate_limit_is_retried_and_stops_the_run_only_when_the_retries_run_out(server, monkeypatch):
    server.script = lambda request: QUOTA_PER_MINUTE if request["attempt"] < 2 else None
    generator = loaded(server, monkeypatch, "generator.max_retries=2")
    [result] = generator.generate([generator.prepare(photo())], [0])
    assert isinstance(result, Variation) and result.info["retries"] == 2

    server.script = lambda request: QUOTA_PER_MINUTE
    with pytest.raises(UserError, match="quota or rate limit still exceeded .gave up after 2 retries."):
        generator.generate([generator.prepare(photo(1))], [0])
    assert len(server.attempts(1)) == 3


def test_money_is_bounded_over_all_shards(tmp_path):
    """8 photos at $1 with max_cost $5: each shard alone would fit, the dataset does not, so every shard refuses."""
    for index in range(4):
        cfg = compose_config(
            "source=samples", "generator=gemini_image", "generator.price=1", "generator.max_cost=5", "logger=none",
            "size=64", "shard.count=4", f"shard.index={index}", f"dataset_dir={tmp_path / 'out'}",
        )  # fmt: skip
        with pytest.raises(UserError, match=r"estimated cost \$8.00 for the 8 images still missing in the whole"):
            make_dataset(cfg)
    assert not (tmp_path / "out").exists()


def test_the_final_image_is_kept_not_a_thought_image(server, monkeypatch):
    thought = {"inlineData": {"mimeType": "image/png", "data": png_b64(512, 1)}, "thought": True}
    final = {"inlineData": {"mimeType": "image/png", "data": png_b64(512, 2)}}
    text = {"text": "Here is the photo."}
    candidate = {"content": {"role": "model", "parts": [thought, text, final]}, "finishReason": "STOP"}
    server.script = lambda request: (200, {"candidates": [candidate], "responseId": "r1"})
    generator = loaded(server, monkeypatch)
    [result] = generator.generate([generator.prepare(photo())], [0])
    expected = Image.open(io.BytesIO(base64.b64decode(final["inlineData"]["data"]))).convert("RGB")
    assert result.image.tobytes() == expected.tobytes() and result.info["request_id"] == "r1"


def test_a_timeout_is_retried_then_skipped(server, monkeypatch):
    server.hold = 1.0
    generator = loaded(server, monkeypatch, "generator.timeout=0.3", "generator.max_retries=1")
    [result] = generator.generate([generator.prepare(photo())], [0])
    assert isinstance(result, SkipImage) and "timed out after 0.3 s" in result.reason
    assert "gave up after 1 retries" in result.reason and "2 request(s) timed out" in result.reason
    assert len(server.requests) == 2 and generator.stats()["possibly_billed_timeouts"] == 2


def test_no_network_stops_after_a_few_photos(monkeypatch):
    with socket.socket() as bound:  # bound, never listening: connections are refused, and no test can take it
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        closed = FakeGemini.__new__(FakeGemini)
        closed.url = f"http://127.0.0.1:{port}"
        generator = loaded(closed, monkeypatch, "generator.max_retries=0", "generator.concurrency=1")
        with pytest.raises(UserError, match=f"cannot reach 127.0.0.1:{port}: 3 photos in a row failed to connect"):
            generator.generate([generator.prepare(photo(i)) for i in range(5)], list(range(5)))


def test_other_rejections_skip_the_photo(server, monkeypatch):
    server.script = lambda request: api_error(400, "INVALID_ARGUMENT", "Unable to process input image.")
    generator = loaded(server, monkeypatch)
    [result] = generator.generate([generator.prepare(photo())], [0])
    assert result.reason == "HTTP 400 INVALID_ARGUMENT: Unable to process input image."


def test_a_daily_or_zero_quota_is_told_from_a_rate_limit():
    assert quota_exhausted(json.dumps(QUOTA_PER_DAY[1]).encode())
    assert quota_exhausted(json.dumps(api_error(429, "RESOURCE_EXHAUSTED", "limit: 0, model: x")[1]).encode())
    assert quota_exhausted(json.dumps(QUOTA_PER_MINUTE[1]).encode()) is None
    assert quota_exhausted(b"not json") is None


def test_google_keys_are_scrubbed_from_messages():
    assert one_line(f"key {KEY} and AIzaSyOTHERKEY12345\n!", KEY, secret_name="GEMINI_API_KEY") == (
        "key <GEMINI_API_KEY> and AIza*** !"
    )
