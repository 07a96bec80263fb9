"""OpenAI image APIs as generators: DALL-E 2 variations and GPT Image edits, careful with money and keys.

Everything that names a model or a price lives in the YAML (`conf/generator/dalle2.yaml`, `gpt_image.yaml`):
OpenAI retires image models (DALL-E 2 left its API on 2026-05-12), so no model name is written here.

- The key comes only from the environment (`OPENAI_API_KEY`); it is never stored in a config, a manifest row, a
  log line or an error message (messages from the server are scrubbed of it).
- `plan()` prices the whole dataset (all shards, minus the pairs already done) from the YAML price table and
  refuses a run above `max_cost` before anything is sent; `dry_run=true` prints that plan and sends nothing.
- Requests of one `generate()` call run on up to `concurrency` threads. Retries are the OpenAI SDK's own
  (`max_retries`: 408/409/429/5xx and connection errors, waiting what the server's retry-after asks or an
  exponential backoff); then the photo is skipped with the reason. Other rejections (400: content policy, 413, ...)
  skip the photo. A refused key (401/403), a missing model or endpoint (404), an empty quota (never retried) or a
  setting the API refuses stop the whole run with one line, no further request is sent, and the images already
  received in that batch are still written. A few connection failures in a row (no network) stop the run too.
- A request that timed out after it was sent may have been billed: the reason says so and the run counts them.
- The APIs take no seed: the per-image `seeds` the factory passes are not used, so a variation cannot be
  reproduced by rerunning; the pair written is the record.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx2
import openai
from PIL import Image

from aigen.errors import SkipImage, UserError
from aigen.generators import paid_api
from aigen.generators.base import Variation
from aigen.generators.paid_api import LedgerTransport, PaidAPI, encode_png

log = logging.getLogger(__name__)

KEY_ENV = "OPENAI_API_KEY"
# 400s naming one of these parameters are a setting the API refuses (for every photo): stop, do not skip them all.
SETTING_PARAMS = {"model", "size", "quality", "input_fidelity", "response_format", "n", "prompt", "output_format"}
PER_IMAGE_CODES = {"content_policy_violation", "moderation_blocked", "image_generation_user_error"}
STOP_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}
SQUARE_SIZE = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)$")


def one_line(text: object, secret: str | None = None, limit: int = 300) -> str:
    """A server message made safe for a log or failures.jsonl, the key (if it is in there) named OPENAI_API_KEY."""
    return paid_api.one_line(text, secret, limit, KEY_ENV)


def error_code(body: bytes) -> str | None:
    """`error.code` of an OpenAI error body, or None."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, Mapping) else None


class OpenAITransport(LedgerTransport):
    """The ledger transport that also marks an empty quota or billing limit as not retryable (the SDK's own
    `x-should-retry` header), so the SDK does not retry it."""

    def inspect(self, response: httpx2.Response) -> None:
        if response.status_code == 429 and error_code(response.read()) in STOP_CODES:
            response.headers["x-should-retry"] = "false"


def square_side(api_size: str) -> int:
    match = SQUARE_SIZE.match(str(api_size))
    if not match or match.group(1) != match.group(2):
        raise UserError(f"generator.api_size={api_size!r} must be a square WIDTHxHEIGHT size such as 1024x1024")
    return int(match.group(1))


def error_message(error: openai.APIError) -> str:
    body = error.body
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])
    if isinstance(body, str) and body:
        return body
    return error.message


class OpenAIImages(PaidAPI):
    """What DALL-E 2 variations and GPT Image edits share: the size, the client, and OpenAI's errors (the money,
    key, concurrency and retry ledger are `PaidAPI`'s)."""

    key_envs = (KEY_ENV,)
    default_url = "https://api.openai.com/v1"
    base_url_env = "OPENAI_BASE_URL"
    path = ""  # the endpoint, relative to the base URL (for messages)
    max_upload_bytes = 50_000_000

    def __init__(self, api_size: str, **options) -> None:
        super().__init__(**options)
        self.api_size = str(api_size)
        self._client: openai.OpenAI | None = None

    # -- what the factory records and prints ---------------------------------------------------------------

    def check(self) -> None:
        super().check()
        square_side(self.api_size)

    @property
    def side(self) -> int:
        return square_side(self.api_size)

    @property
    def gen_size(self) -> int:
        """The API returns images of the requested size."""
        return self.side

    @property
    def input_side(self) -> int:
        """The photo is sent at the request size, so it need not be decoded larger."""
        return self.side

    def describe(self) -> dict:
        """Everything that decides the output; not the endpoint (base_url) and never the key."""
        self.check()
        return {"generator": self.name, "model": self.model, "api_size": self.api_size}

    def dir_tags(self) -> list[str]:
        return [self.model, self.api_size]

    def price_path(self) -> list[str]:
        return [self.model, self.api_size]

    def settings_line(self) -> str:
        return f"{self.model} at {self.api_size}"

    # -- set-up ---------------------------------------------------------------------------------------------

    def load(self) -> None:
        self.check()
        secret = self.read_key()
        options: dict = {
            "api_key": secret,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "http_client": openai.DefaultHttpxClient(transport=self.start_ledger(OpenAITransport())),
        }
        if self.base_url:
            options["base_url"] = self.base_url
        try:
            self._client = openai.OpenAI(**options)
        except openai.OpenAIError as error:
            raise UserError(f"cannot set up the OpenAI client: {one_line(error, secret)}") from None
        log.info("%s: %s via %s, %d requests at once", self.name, self.settings_line(), self.host(), self.concurrency)

    # -- generation -----------------------------------------------------------------------------------------

    def send(self, png: bytes):
        """One request with the raw response (for the `x-request-id` header); subclasses call their endpoint."""
        raise NotImplementedError

    def not_found(self, error: openai.APIStatusError) -> UserError:
        raise NotImplementedError

    def prepare(self, square: Image.Image) -> bytes:
        """The photo as the PNG upload, at the request size (encoded on the factory's worker threads)."""
        return encode_png(square, self.side, self.max_upload_bytes)

    def call(self, png: bytes) -> Variation | SkipImage:
        """Send one photo; the SDK retries what may pass later, what is left is a skip or a UserError."""
        try:
            raw = self.send(png)
        except openai.APIStatusError as error:
            self._connections.connected()
            self.check_fatal(error)
            failure = f"HTTP {error.status_code}: {one_line(error_message(error), self._secret)}"
            return SkipImage("generate", failure + self.attempts_note(), {"request_id": error.request_id})
        except openai.APITimeoutError:
            self._connections.connected()
            return SkipImage("generate", f"timed out after {self.timeout} s{self.attempts_note()}")
        except openai.APIConnectionError as error:
            reason = one_line(f"{type(error).__name__}: {error.__cause__ or error}", self._secret)
            self._connections.failed(reason)
            return SkipImage("generate", reason + self.attempts_note())
        self._connections.connected()
        return self.variation(raw, self._ledger.attempts - 1, self._ledger.timed_out)

    def check_fatal(self, error: openai.APIStatusError) -> None:
        """Raise UserError for what no other photo would pass either: the run stops with one line."""
        message = one_line(error_message(error), self._secret, limit=200)
        status, code, param = error.status_code, error.code, error.param
        if status == 401:
            raise UserError(
                f"HTTP 401 from {self.host()}: the key in {KEY_ENV} was refused ({message}); set a valid key in the "
                "environment and rerun to resume"
            )
        if status == 403:
            raise UserError(
                f"HTTP 403 from {self.host()}: this key may not use {self.model} at {self.path} ({message}); check "
                "the project's model access, or choose another generator.model"
            )
        if status == 404:
            raise self.not_found(error)
        if code in STOP_CODES:
            raise UserError(f"HTTP {status} {code} from {self.host()}: {message}; add credit or raise the limit")
        if status == 400 and code not in PER_IMAGE_CODES and param in SETTING_PARAMS:
            raise UserError(
                f"HTTP 400: the API refused the setting {param!r} for {self.model} ({message}); change it in "
                f"conf/generator/{self.name}.yaml or on the command line"
            )

    def variation(self, raw, retries: int, timed_out: int) -> Variation | SkipImage:
        request_id = raw.headers.get("x-request-id")
        response = raw.parse()
        data = response.data or []
        encoded = data[0].b64_json if data else None
        if not encoded:
            return SkipImage("generate", "the response held no b64_json image", {"request_id": request_id})
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            return SkipImage("generate", f"the returned image is not base64: {error}", {"request_id": request_id})
        image = self.checked_image(data, {"request_id": request_id})
        if isinstance(image, SkipImage):
            return image
        info = {"request_id": request_id, "returned_size": f"{image.width}x{image.height}", "retries": retries}
        if timed_out:
            info["possibly_billed_timeouts"] = timed_out
        usage = getattr(response, "usage", None)
        if usage is not None:
            info["usage"] = {key: getattr(usage, key, None) for key in ("input_tokens", "output_tokens")}
        return Variation(image, info)


class DallE2Variation(OpenAIImages):
    """`images.create_variation`: a square PNG under 4 MB in, one variation out (no prompt).

    Retired from OpenAI's own API on 2026-05-12 (the SDK keeps the call as legacy); OpenAI-compatible servers
    still serve it (`base_url`).
    """

    path = "/images/variations"
    max_upload_bytes = 4_000_000  # "a valid PNG file, less than 4MB, and square"
    sizes = ("256x256", "512x512", "1024x1024")

    def check(self) -> None:
        super().check()
        if self.api_size not in self.sizes:
            raise UserError(f"generator.api_size={self.api_size!r} must be one of {', '.join(self.sizes)}")

    def plan(self, count: int, whole: int | None = None) -> str:
        """The cost plan, and a warning first when it targets OpenAI's own endpoint, which retired DALL-E 2."""
        line = super().plan(count, whole)
        if urlsplit(self.default_url).hostname in self.host():
            line = (
                f"warning: OpenAI's API retired DALL-E 2 and the variations endpoint on 2026-05-12; {self.host()} will "
                "likely answer 404. Use generator=gpt_image, or generator.base_url=URL of an OpenAI-compatible server "
                "that still serves it\n" + line
            )
        return line

    def send(self, png: bytes):
        return self._client.images.with_raw_response.create_variation(
            model=self.model,
            image=("photo.png", png, "image/png"),
            n=1,
            size=self.api_size,
            response_format="b64_json",
        )

    def not_found(self, error: openai.APIStatusError) -> UserError:
        return UserError(
            f"HTTP 404 from {self.host()}{self.path} for model {self.model!r}: the model or endpoint is not served "
            f"there ({one_line(error_message(error), self._secret, limit=150)}). DALL-E 2 and the variations "
            "endpoint were retired from OpenAI's API on 2026-05-12: use generator=gpt_image, or set "
            "generator.base_url to an OpenAI-compatible server that still serves it"
        )


class GPTImageEdit(OpenAIImages):
    """`images.edit` with a GPT Image model: the photo plus a prompt asking for a photorealistic variation."""

    path = "/images/edits"

    def __init__(
        self,
        prompt: str,
        quality: str | None = None,
        input_fidelity: str | None = None,
        output_format: str | None = None,
        **options,
    ) -> None:
        super().__init__(**options)
        self.prompt = str(prompt or "").strip()
        self.quality = quality
        self.input_fidelity = input_fidelity
        self.output_format = output_format

    def check(self) -> None:
        super().check()
        if not self.prompt:
            raise UserError("generator.prompt is empty: the edit endpoint needs a prompt")

    def describe(self) -> dict:
        return super().describe() | {
            "quality": self.quality,
            "input_fidelity": self.input_fidelity,
            "output_format": self.output_format,
            "prompt": self.prompt,
        }

    def dir_tags(self) -> list[str]:
        """Model, size, quality, fidelity and output format as they are; the prompt as a short hash."""
        prompt = "p" + hashlib.sha256(self.prompt.encode()).hexdigest()[:8]
        optional = [f"{value}" for value in (self.quality, self.input_fidelity) if value is not None]
        return [*super().dir_tags(), *optional, self.output_format or "png", prompt]

    def price_path(self) -> list[str]:
        """`auto` and not sent (null) let the server choose, so they are priced as the most it may choose: high."""
        return [self.model, self.api_size, "high" if self.quality in (None, "auto") else str(self.quality)]

    def settings_line(self) -> str:
        quality = f"{self.quality or 'not sent'} (priced as high)" if self.quality in (None, "auto") else self.quality
        return f"{self.model} at {self.api_size}, quality {quality}"

    def send(self, png: bytes):
        optional = {
            key: value
            for key, value in (
                ("quality", self.quality),
                ("input_fidelity", self.input_fidelity),
                ("output_format", self.output_format),
            )
            if value is not None
        }
        return self._client.images.with_raw_response.edit(
            model=self.model,
            image=("photo.png", png, "image/png"),
            prompt=self.prompt,
            n=1,
            size=self.api_size,
            **optional,
        )

    def not_found(self, error: openai.APIStatusError) -> UserError:
        return UserError(
            f"HTTP 404 from {self.host()}{self.path} for model {self.model!r}: the model may be retired or not "
            f"available to this key ({one_line(error_message(error), self._secret, limit=150)}); set "
            "generator.model=<a current GPT Image model> (and its price in generator.prices)"
        )
