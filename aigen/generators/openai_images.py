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
import io
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx2
import openai
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError

from aigen.checks import whole_number
from aigen.errors import RunStopped, SkipImage, UserError
from aigen.generators.base import Generator, Variation
from aigen.preprocess import to_square

log = logging.getLogger(__name__)

KEY_ENV = "OPENAI_API_KEY"
# 400s naming one of these parameters are a setting the API refuses (for every photo): stop, do not skip them all.
SETTING_PARAMS = {"model", "size", "quality", "input_fidelity", "response_format", "n", "prompt", "output_format"}
PER_IMAGE_CODES = {"content_policy_violation", "moderation_blocked", "image_generation_user_error"}
STOP_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}
CONNECTION_FAILURES_TO_STOP = 3  # photos in a row whose requests could not connect: no network, stop
KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_*.\-]{3,}")
SQUARE_SIZE = re.compile(r"^([1-9][0-9]*)x([1-9][0-9]*)$")


def one_line(text: object, secret: str | None = None, limit: int = 300) -> str:
    """A server message made safe for a log or failures.jsonl: one line, short, and with no key in it."""
    text = str(text)
    if secret:
        text = text.replace(secret, "<OPENAI_API_KEY>")
    text = " ".join(KEY_LIKE.sub("sk-***", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_code(body: bytes) -> str | None:
    """`error.code` of an OpenAI error body, or None."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, Mapping) else None


class LedgerTransport(httpx2.HTTPTransport):
    """The SDK's HTTP transport, keeping a ledger per thread of the attempts the SDK's retries send and of those
    that timed out after the request was sent (OpenAI may have billed those). It also marks an empty quota or
    billing limit as not retryable (the SDK's own `x-should-retry` header), so the SDK does not retry it."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self._local = threading.local()

    def start(self) -> None:
        self._local.attempts = 0
        self._local.timed_out = 0

    @property
    def attempts(self) -> int:
        return getattr(self._local, "attempts", 0)

    @property
    def timed_out(self) -> int:
        return getattr(self._local, "timed_out", 0)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self._local.attempts = self.attempts + 1
        try:
            response = super().handle_request(request)
        except httpx2.ReadTimeout:
            self._local.timed_out = self.timed_out + 1
            raise
        if response.status_code == 429 and error_code(response.read()) in STOP_CODES:
            response.headers["x-should-retry"] = "false"
        return response


class ConnectionWatch:
    """Counts photos in a row whose requests could not connect; a handful means there is no network."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._in_a_row = 0
        self._lock = threading.Lock()

    def connected(self) -> None:
        with self._lock:
            self._in_a_row = 0

    def failed(self, reason: str) -> None:
        with self._lock:
            self._in_a_row += 1
            if self._in_a_row >= CONNECTION_FAILURES_TO_STOP:
                raise UserError(
                    f"cannot reach {self.host}: {self._in_a_row} photos in a row failed to connect ({reason}); "
                    "check the network, a proxy or generator.base_url, then rerun to resume"
                )


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


class OpenAIImages(Generator):
    """What DALL-E 2 variations and GPT Image edits share: price, key, client, concurrency, retries, errors.

    `seeds` are not used: the image APIs take no seed (see the module docstring).
    """

    seeded = False
    paid = True

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
        license: str | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.license = license
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
        self._ledger: LedgerTransport | None = None
        self._connections = ConnectionWatch(self.host())
        self._possibly_billed = 0
        self._count_lock = threading.Lock()

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
            whole_number(f"generator.{option}", value, low)
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

    def plan(self, count: int, whole: int | None = None) -> str:
        """`max_cost` bounds the whole dataset: a shard refuses when the images still missing over all shards
        (`whole`) would cost more, so N shards cannot spend N times the cap."""
        self.check()
        price = self.price_per_image()
        whole = count if whole is None else whole
        cost = whole * price
        scope = f"{whole} images" if whole == count else f"{count} images in this shard, {whole} in all shards"
        line = (
            f"{self.name}: {scope} from {self.settings_line()} via {self.host()}, estimated cost "
            f"${cost:.2f} (${price:.4g} per image, generator.max_cost=${self.max_cost:.2f} for the whole dataset)"
        )
        if cost > self.max_cost:
            if self.dry_run:
                return line + " -- ABOVE max_cost: a real run would refuse to start"
            raise UserError(
                f"estimated cost ${cost:.2f} for the {whole} images still missing in the whole dataset "
                f"({self.settings_line()}, ${price:.4g} each) is above generator.max_cost=${self.max_cost:.2f}; "
                "nothing was sent. Raise generator.max_cost, lower limit=, or look first with generator.dry_run=true"
            )
        return line

    def stats(self) -> dict:
        return {"possibly_billed_timeouts": self._possibly_billed}

    # -- set-up ---------------------------------------------------------------------------------------------

    def load(self) -> None:
        self.check()
        secret = os.environ.get(KEY_ENV, "").strip()
        if not secret:
            raise UserError(
                f"{KEY_ENV} is not set: export it in the environment (a key is never read from the config); "
                "generator.dry_run=true shows the plan and cost without one"
            )
        self._ledger = LedgerTransport()
        options: dict = {
            "api_key": secret,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "http_client": openai.DefaultHttpxClient(transport=self._ledger),
        }
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

        A UserError in any request (bad key, retired model, empty quota, no network) sets a stop flag that every
        other request checks before it is sent; once all threads are back, RunStopped carries the results that
        did arrive, so that images already paid for are written before the run stops.
        """
        stop = threading.Event()
        fatal: list[UserError] = []

        def task(image: bytes) -> Variation | SkipImage | None:
            if stop.is_set():
                return None
            try:
                return self.request(image)
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
            raise RunStopped(str(fatal[0]), results)
        return results

    def request(self, png: bytes) -> Variation | SkipImage:
        """Send one photo; the SDK retries what may pass later, what is left is a skip or a UserError."""
        self._ledger.start()
        try:
            raw = self.send(png)
        except openai.APIStatusError as error:
            self._connections.connected()
            self.check_fatal(error)
            failure = f"HTTP {error.status_code}: {one_line(error_message(error), self._secret)}"
            if error.request_id:
                failure += f" (request {error.request_id})"
            return SkipImage("generate", failure + self.attempts_note())
        except openai.APITimeoutError:
            self._connections.connected()
            return SkipImage("generate", f"timed out after {self.timeout} s{self.attempts_note()}")
        except openai.APIConnectionError as error:
            reason = one_line(f"{type(error).__name__}: {error.__cause__ or error}", self._secret)
            self._connections.failed(reason)
            return SkipImage("generate", reason + self.attempts_note())
        finally:
            if self._ledger.timed_out:
                with self._count_lock:
                    self._possibly_billed += self._ledger.timed_out
        self._connections.connected()
        return self.variation(raw, self._ledger.attempts - 1, self._ledger.timed_out)

    def attempts_note(self) -> str:
        """What the SDK's retries did for this photo, and whether OpenAI may have billed it."""
        note = f" (gave up after {self._ledger.attempts - 1} retries)" if self._ledger.attempts > 1 else ""
        if self._ledger.timed_out:
            note += f"; {self._ledger.timed_out} request(s) timed out after being sent and may have been billed"
        return note

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
            return SkipImage("generate", f"the response held no b64_json image (request {request_id})")
        try:
            with Image.open(io.BytesIO(base64.b64decode(encoded, validate=True))) as returned:
                image = returned.convert("RGB")
        except (binascii.Error, ValueError, OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
            return SkipImage("generate", f"the returned image does not decode: {error} (request {request_id})")
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
