"""OpenAI image APIs as generators: DALL-E 2 variations and GPT Image edits, careful with money and keys.

Everything that names a model or a price lives in the YAML (`conf/generator/dalle2.yaml`, `gpt_image.yaml`):
OpenAI retires image models (DALL-E 2 left its API on 2026-05-12), so no model name is written here.

- The key comes only from the environment (`OPENAI_API_KEY`); it is never stored in a config, a manifest row, a
  log line or an error message (messages from the server are scrubbed of it).
- `plan()` prices the run from the YAML price table and refuses a run above `max_cost` before anything is sent;
  `dry_run=true` prints that plan and sends nothing (the factory checks the `dry_run` attribute).
- Requests of one `generate()` call run on up to `concurrency` threads. 408/409/429/5xx and connection errors are
  retried up to `max_retries` times, waiting what the server asks (`retry-after-ms` / `retry-after`, up to 120 s)
  or an exponential backoff; then the photo is skipped with the reason. Other rejections (400: content policy,
  413, ...) skip the photo without a retry. A refused key (401/403), a missing model or endpoint (404), an empty
  quota or a setting the API refuses stop the whole run with one line, and no further request is sent.
- The APIs take no seed: the per-image `seeds` the factory passes are not used, so a variation cannot be
  reproduced by rerunning; the pair written is the record.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import io
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import openai
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError

from aigen.errors import SkipImage, UserError
from aigen.generators.base import Variation
from aigen.preprocess import to_square

log = logging.getLogger(__name__)

KEY_ENV = "OPENAI_API_KEY"
MAX_RETRY_AFTER = 120.0  # seconds; a server asking for a longer wait gets the photo skipped (as the SDK does)
INITIAL_BACKOFF = 0.5  # seconds before the first retry when the server gives no retry-after; doubles each time
MAX_BACKOFF = 8.0
RETRY_STATUS = {408, 409, 429}  # and every 5xx
# 400s naming one of these parameters are a setting the API refuses (for every photo): stop, do not skip them all.
SETTING_PARAMS = {"model", "size", "quality", "input_fidelity", "response_format", "n", "prompt", "output_format"}
PER_IMAGE_CODES = {"content_policy_violation", "moderation_blocked", "image_generation_user_error"}
STOP_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}
KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*.\-]{3,}")
SQUARE_SIZE = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)$")


def one_line(text: object, secret: str | None = None, limit: int = 300) -> str:
    """A server message made safe for a log or failures.jsonl: one line, short, and with no key in it."""
    text = str(text)
    if secret:
        text = text.replace(secret, "<OPENAI_API_KEY>")
    text = " ".join(KEY_LIKE.sub("sk-***", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The wait a response asks for: `retry-after-ms`, `retry-after` in (fractional) seconds or as an HTTP date."""
    if not headers:
        return None
    for header, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            continue
        return seconds if math.isfinite(seconds) else MAX_RETRY_AFTER + 1
    value = headers.get("retry-after")
    if value:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        return when.timestamp() - time.time()
    return None


def backoff_seconds(retries_done: int) -> float:
    """Exponential backoff with up to 25% jitter, for responses that say nothing about when to retry."""
    return min(INITIAL_BACKOFF * 2.0**retries_done, MAX_BACKOFF) * (1 - 0.25 * random.random())


def encode_png(image: Image.Image, side: int, max_bytes: int) -> bytes:
    """The square photo resized to `side` as a PNG under `max_bytes`; shrunk step by step if it would not fit."""
    while True:
        buffer = io.BytesIO()
        to_square(image.convert("RGB"), side).save(buffer, format="PNG")
        data = buffer.getvalue()
        if len(data) < max_bytes:
            return data
        if side <= 64:
            raise SkipImage("generate", f"cannot encode the photo as a PNG under {max_bytes} bytes")
        side = max(64, int(side * 0.85))


def square_side(api_size: str) -> int:
    match = SQUARE_SIZE.match(str(api_size))
    if not match or match.group(1) != match.group(2):
        raise UserError(f"generator.api_size={api_size!r} must be a square WIDTHxHEIGHT size such as 1024x1024")
    return int(match.group(1))


def plain(value: object) -> object:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def error_message(error: openai.APIError) -> str:
    body = error.body
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])
    if isinstance(body, str) and body:
        return body
    return error.message


class OpenAIImages:
    """What DALL-E 2 variations and GPT Image edits share: price, key, client, concurrency, retries, errors.

    `seeds` are not used: the image APIs take no seed (see the module docstring).
    """

    path = ""  # the endpoint, relative to the base URL (for messages)
    max_upload_bytes = 50_000_000

    def __init__(
        self,
        name: str,
        model: str,
        api_size: str,
        prices: Mapping | None = None,
        price: float | None = None,
        max_cost: float = 5.0,
        dry_run: bool = False,
        base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        concurrency: int = 4,
    ) -> None:
        self.name = name
        self.model = model
        self.api_size = str(api_size)
        self.prices = plain(prices) or {}
        self.price = price
        self.max_cost = max_cost
        self.dry_run = bool(dry_run)
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self._client: openai.OpenAI | None = None
        self._secret: str | None = None

    # -- what the factory records and prints ---------------------------------------------------------------

    def check(self) -> None:
        """The settings, checked where a UserError reaches the user as one line.

        Not in __init__: Hydra's `instantiate` wraps any exception there in an InstantiationException. The factory
        calls `describe()` first (before it creates the dataset dir), so that is where this runs.
        """
        if not self.model:
            raise UserError(f"generator.model is empty: set the model name in conf/generator/{self.name}.yaml")
        square_side(self.api_size)
        for option, value, low in (("concurrency", self.concurrency, 1), ("max_retries", self.max_retries, 0)):
            if not isinstance(value, int) or value < low:
                raise UserError(f"generator.{option}={value!r} must be a whole number, at least {low}")
        for option, value in (("timeout", self.timeout), ("max_cost", self.max_cost)):
            if not isinstance(value, (int, float)) or value < 0 or (option == "timeout" and value == 0):
                raise UserError(f"generator.{option}={value!r} must be a positive number")

    @property
    def side(self) -> int:
        return square_side(self.api_size)

    def default_batch_size(self) -> int:
        """Several rounds of `concurrency` requests per batch, so one slow request idles few slots."""
        return 4 * self.concurrency

    @property
    def input_side(self) -> int:
        """The photo is sent at the request size, so it need not be decoded larger."""
        return self.side

    def describe(self) -> dict:
        """Everything that decides the output; not the endpoint (base_url) and never the key."""
        self.check()
        return {"generator": self.name, "model": self.model, "api_size": self.api_size}

    def price_path(self) -> list[str]:
        return [self.model, self.api_size]

    def price_per_image(self) -> float:
        """USD per image: `price` if set, else the table entry for model / api_size [/ quality]."""
        where = "generator.price"
        node: object = self.price
        if node is None:
            where = f"generator.prices / {' / '.join(self.price_path())}"
            node = self.prices
            for key in self.price_path():
                if not isinstance(node, Mapping) or key not in node:
                    raise UserError(
                        f"no price for {' / '.join(self.price_path())} in generator.prices (conf/generator/"
                        f"{self.name}.yaml): add one (USD per image) or set generator.price=<USD per image>"
                    )
                node = node[key]
        if isinstance(node, bool) or not isinstance(node, (int, float)) or node < 0:
            raise UserError(f"{where} = {node!r} is not a price (USD per image, a number 0 or more)")
        return float(node)

    def settings_line(self) -> str:
        return f"{self.model} at {self.api_size}"

    def host(self) -> str:
        url = self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        parts = urlsplit(url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else url

    def plan(self, count: int) -> str:
        self.check()
        price = self.price_per_image()
        cost = count * price
        line = (
            f"{self.name}: {count} images from {self.settings_line()} via {self.host()}, estimated cost "
            f"${cost:.2f} (${price:.4g} per image, generator.max_cost=${self.max_cost:.2f})"
        )
        if cost > self.max_cost:
            if self.dry_run:
                return line + " -- ABOVE max_cost: a real run would refuse to start"
            raise UserError(
                f"estimated cost ${cost:.2f} for {count} images ({self.settings_line()}, ${price:.4g} each) is above "
                f"generator.max_cost=${self.max_cost:.2f}; nothing was sent. Raise generator.max_cost, lower "
                "limit=, or look first with generator.dry_run=true"
            )
        return line

    # -- set-up ---------------------------------------------------------------------------------------------

    def load(self) -> None:
        self.check()
        secret = os.environ.get(KEY_ENV, "").strip()
        if not secret:
            raise UserError(
                f"{KEY_ENV} is not set: export it in the environment (a key is never read from the config); "
                "generator.dry_run=true shows the plan and cost without one"
            )
        options: dict = {"api_key": secret, "timeout": self.timeout, "max_retries": 0}  # retries are ours
        if self.base_url:
            options["base_url"] = self.base_url
        try:
            self._client = openai.OpenAI(**options)
        except openai.OpenAIError as error:
            raise UserError(f"cannot set up the OpenAI client: {one_line(error, secret)}") from None
        self._secret = secret
        for name in ("httpx", "httpx2"):  # one INFO line per request would drown the progress bar
            logging.getLogger(name).setLevel(logging.WARNING)
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

    def generate(self, images: list[bytes], seeds: list[int]) -> list[Variation | SkipImage]:
        """One request per photo, `concurrency` at a time; `seeds` are ignored (the APIs take none).

        A UserError in any request (bad key, retired model, ...) sets a stop flag that every other request checks
        before it is sent (and that ends retry waits), then is raised once all threads are back.
        """
        stop = threading.Event()
        fatal: list[UserError] = []

        def task(image: bytes) -> Variation | SkipImage | None:
            if stop.is_set():
                return None
            try:
                return self.request(image, stop)
            except UserError as error:
                stop.set()
                fatal.append(error)
                return None
            except Exception as error:  # noqa: BLE001 - one photo's surprise must not cost the batch
                return SkipImage("generate", one_line(f"{type(error).__name__}: {error}", self._secret))

        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(images)), thread_name_prefix=self.name)
        try:
            futures = [pool.submit(task, image) for image in images]
            results = [future.result() for future in futures]
        except BaseException:  # Ctrl-C while waiting: nothing more is sent
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        if fatal:
            raise fatal[0]
        return results

    def request(self, png: bytes, stop: threading.Event) -> Variation | SkipImage | None:
        """Send one photo, retrying what may pass later; None when the stop flag kept it from being sent."""
        retries = 0
        while True:
            if stop.is_set():
                return None
            delay: float | None = None
            try:
                raw = self.send(png)
            except openai.APIStatusError as error:
                self.check_fatal(error)
                failure = f"HTTP {error.status_code}: {one_line(error_message(error), self._secret)}"
                if error.request_id:
                    failure += f" (request {error.request_id})"
                delay, why_not = self.retry_delay(error, retries)
                failure += why_not
            except openai.APIConnectionError as error:  # also timeouts: the request may not have reached OpenAI
                failure = one_line(f"{type(error).__name__}: {error}", self._secret)
                delay = backoff_seconds(retries)
            else:
                return self.variation(raw, retries)
            if delay is None or retries >= self.max_retries:
                return SkipImage("generate", failure + (f" (gave up after {retries} retries)" if retries else ""))
            log.info("%s: %s; retry %d of %d in %.1f s", self.name, failure, retries + 1, self.max_retries, delay)
            if stop.wait(delay):
                return None
            retries += 1

    def retry_delay(self, error: openai.APIStatusError, retries: int) -> tuple[float | None, str]:
        """(seconds to wait, "") for a retryable error, (None, why not) otherwise."""
        headers = error.response.headers
        should = headers.get("x-should-retry")
        retryable = error.status_code in RETRY_STATUS or error.status_code >= 500
        if should == "false" or not (retryable or should == "true"):
            return None, ""
        wait = retry_after_seconds(headers)
        if wait is not None and wait > MAX_RETRY_AFTER:
            return None, f" (retry-after {wait:.0f} s is above {MAX_RETRY_AFTER:.0f} s: not retried)"
        if wait is not None and wait > 0:
            return wait, ""
        return backoff_seconds(retries), ""

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

    def variation(self, raw, retries: int) -> Variation | SkipImage:
        request_id = raw.headers.get("x-request-id")
        response = raw.parse()
        data = response.data or []
        encoded = data[0].b64_json if data else None
        if not encoded:
            return SkipImage("generate", f"the response held no b64_json image (request {request_id})")
        try:
            with Image.open(io.BytesIO(base64.b64decode(encoded, validate=True))) as returned:
                image = returned.convert("RGB")
        except (binascii.Error, ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
            return SkipImage("generate", f"the returned image does not decode: {error} (request {request_id})")
        info = {"request_id": request_id, "returned_size": f"{image.width}x{image.height}", "retries": retries}
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

    def price_path(self) -> list[str]:
        return [self.model, self.api_size, str(self.quality)]

    def settings_line(self) -> str:
        return f"{self.model} at {self.api_size}, quality {self.quality}"

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
