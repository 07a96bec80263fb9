"""Gemini image editing as a generator ("Nano Banana"): the photo plus an instruction in, one image out.

One `models.generate_content` call of the google-genai SDK per photo, with `response_modalities` TEXT and IMAGE and
a square `image_config`. The model, its output size, the instruction and the price table live in the YAML
(`conf/generator/gemini_image.yaml`): Google retires preview model ids, so none is written here.

- The money, the key and the batch's threads are `PaidAPI`'s, as for the OpenAI generators: a cost plan before any
  request, `max_cost` over all shards, `dry_run`; the key only from GOOGLE_API_KEY or GEMINI_API_KEY (the SDK's
  order), never in a config, a row, a log line or a message.
- Retries are the SDK's own (`HttpRetryOptions`: 408, 429, 5xx, timeouts and connection errors, exponential
  backoff from `retry_delay`). A quota that will not refill soon (a daily quota, or a limit of 0) is not retried:
  the transport stops it before the SDK sees it.
- A refused key, a model the key may not use or that does not exist, or a quota still exceeded after the retries
  stops the run with one line, after the images already received in that batch are written. A blocked prompt or a
  response without an image (finish reason SAFETY, IMAGE_SAFETY, NO_IMAGE, a text-only answer) is a skip recorded
  with its reason and counted (`refusals`).
- The API takes no seed: the per-image `seeds` are not used. Gemini's images carry Google's invisible SynthID
  watermark, a cue a detector may learn (see the config's `license`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping

import httpx2
from google import genai
from google.genai import errors, types
from PIL import Image

from aigen.errors import SkipImage, UserError
from aigen.generators.base import Variation
from aigen.generators.paid_api import LedgerTransport, PaidAPI, encode_png

log = logging.getLogger(__name__)

IMAGE_SIDES = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}  # image_size -> side of a 1:1 image
DEFAULT_IMAGE_SIZE = "1K"  # what the API makes when image_size is not sent
ASPECT_RATIO = "1:1"  # pairs are square
SDK_LOGGERS = ("google_genai._api_client", "google_genai.models", "google_genai._common", "google_genai.types")


class QuotaExhausted(Exception):
    """A 429 for a quota that will not refill within the retries (per day, or a limit of 0). Not an SDK error, so
    the SDK's retry does not retry it."""


def quota_exhausted(body: bytes) -> str | None:
    """The message of a Gemini 429 body whose quota is per day or zero, else None (a per-minute rate limit)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, Mapping):
        return None
    message = str(error.get("message") or "")
    quota_ids = [
        str(violation.get("quotaId", ""))
        for detail in error.get("details") or []
        if isinstance(detail, Mapping)
        for violation in detail.get("violations") or []
        if isinstance(violation, Mapping)
    ]
    return message if "limit: 0" in message or any("PerDay" in quota for quota in quota_ids) else None


class GeminiTransport(LedgerTransport):
    """The ledger transport that stops a quota the retries cannot wait out before the SDK would retry it."""

    def inspect(self, response: httpx2.Response) -> None:
        if response.status_code == 429 and (message := quota_exhausted(response.read())):
            raise QuotaExhausted(message)


def error_reason(error: errors.APIError) -> str | None:
    """`reason` of the ErrorInfo in a Gemini error (e.g. API_KEY_INVALID), or None."""
    details = error.details.get("error", error.details) if isinstance(error.details, Mapping) else {}
    for detail in details.get("details") or [] if isinstance(details, Mapping) else []:
        if isinstance(detail, Mapping) and detail.get("reason"):
            return str(detail["reason"])
    return None


def enum_name(value: object) -> str | None:
    """An SDK enum's name; a value the pinned SDK does not know yet stays the string the server sent."""
    return None if value is None else str(getattr(value, "value", value))


class GeminiImage(PaidAPI):
    """`models.generate_content` with a Gemini image model: the photo and `prompt` in, the edited photo out."""

    key_envs = ("GOOGLE_API_KEY", "GEMINI_API_KEY")  # the SDK's precedence when both are set
    default_url = "https://generativelanguage.googleapis.com"
    base_url_env = "GOOGLE_GEMINI_BASE_URL"
    max_upload_bytes = 15_000_000  # inline data: a request under 20 MB once base64 adds a third

    def __init__(
        self,
        prompt: str,
        image_size: str | None = DEFAULT_IMAGE_SIZE,
        retry_delay: float = 1.0,
        **options,
    ) -> None:
        super().__init__(**options)
        self.prompt = str(prompt or "").strip()
        self.image_size = None if image_size is None else str(image_size)
        self.retry_delay = retry_delay
        self._client: genai.Client | None = None
        self._refusals = 0

    # -- what the factory records and prints ---------------------------------------------------------------

    def check(self) -> None:
        super().check()
        if not self.prompt:
            raise UserError("generator.prompt is empty: Gemini edits the photo by an instruction")
        if self.image_size is not None and self.image_size not in IMAGE_SIDES:
            raise UserError(
                f"generator.image_size={self.image_size!r} must be one of {', '.join(IMAGE_SIDES)} or null "
                f"(not sent: the model's default, {DEFAULT_IMAGE_SIZE})"
            )
        if not isinstance(self.retry_delay, (int, float)) or self.retry_delay < 0:
            raise UserError(f"generator.retry_delay={self.retry_delay!r} must be a number of seconds, 0 or more")

    @property
    def side(self) -> int:
        return IMAGE_SIDES[self.image_size or DEFAULT_IMAGE_SIZE]

    @property
    def gen_size(self) -> int:
        """The API returns a square image of the requested size."""
        return self.side

    @property
    def input_side(self) -> int:
        """The photo is sent at the output size, so it need not be decoded larger."""
        return self.side

    def describe(self) -> dict:
        """Everything that decides the output; not the endpoint (base_url) and never the key."""
        self.check()
        return {
            "generator": self.name,
            "model": self.model,
            "image_size": self.image_size,
            "aspect_ratio": ASPECT_RATIO,
            "prompt": self.prompt,
        }

    def dir_tags(self) -> list[str]:
        """Model and size as they are; the prompt as a short hash."""
        prompt = "p" + hashlib.sha256(self.prompt.encode()).hexdigest()[:8]
        return [self.model, self.image_size or DEFAULT_IMAGE_SIZE, prompt]

    def price_path(self) -> list[str]:
        return [self.model, self.image_size or DEFAULT_IMAGE_SIZE]

    def settings_line(self) -> str:
        return f"{self.model} at {self.image_size or DEFAULT_IMAGE_SIZE}"

    def stats(self) -> dict:
        return super().stats() | {"refusals": self._refusals}

    # -- set-up ---------------------------------------------------------------------------------------------

    def load(self) -> None:
        self.check()
        secret = self.read_key()
        ledger = self.start_ledger(GeminiTransport(), *SDK_LOGGERS)
        http_options = types.HttpOptions(
            base_url=self.base_url,  # None: the SDK's default, which honours $GOOGLE_GEMINI_BASE_URL
            timeout=int(self.timeout * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=self.max_retries + 1, initial_delay=self.retry_delay),
            client_args={"transport": ledger},
        )
        try:
            self._client = genai.Client(api_key=secret, vertexai=False, http_options=http_options)
        except (ValueError, errors.APIError) as error:
            raise UserError(f"cannot set up the Gemini client: {self.safe(error)}") from None
        log.info("%s: %s via %s, %d requests at once", self.name, self.settings_line(), self.host(), self.concurrency)

    # -- generation -----------------------------------------------------------------------------------------

    def prepare(self, square: Image.Image) -> bytes:
        """The photo as an inline PNG at the output size (encoded on the factory's worker threads)."""
        return encode_png(square, self.side, self.max_upload_bytes)

    def call(self, png: bytes) -> Variation | SkipImage:
        """Send one photo; the SDK retries what may pass later, what is left is a skip or a UserError."""
        image_config = types.ImageConfig(aspect_ratio=ASPECT_RATIO, image_size=self.image_size)
        try:
            response = self._client.models.generate_content(
                model=self.model,
                contents=[self.prompt, types.Part.from_bytes(data=png, mime_type="image/png")],
                config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"], image_config=image_config),
            )
        except QuotaExhausted as error:
            raise UserError(
                f"HTTP 429 from {self.host()}: the quota for {self.model} is used up ({self.safe(error, 200)}); "
                "wait for it to reset or raise it (billing) in the key's Google Cloud project, then rerun to resume"
            ) from None
        except errors.APIError as error:
            self._connections.connected()
            self.check_fatal(error)
            failure = f"HTTP {error.code} {error.status}: {self.safe(error.message or error.details)}"
            return SkipImage("generate", failure + self.attempts_note())
        except httpx2.TimeoutException:
            self._connections.connected()
            return SkipImage("generate", f"timed out after {self.timeout} s{self.attempts_note()}")
        except httpx2.TransportError as error:
            reason = self.safe(f"{type(error).__name__}: {error}")
            self._connections.failed(reason)
            return SkipImage("generate", reason + self.attempts_note())
        self._connections.connected()
        return self.variation(response)

    def check_fatal(self, error: errors.APIError) -> None:
        """Raise UserError for what no other photo would pass either: the run stops with one line."""
        message = self.safe(error.message or error.details, limit=200)
        where = f"HTTP {error.code} {error.status} from {self.host()}"
        if error.code == 401 or error_reason(error) == "API_KEY_INVALID":  # Gemini answers a bad key with a 400
            raise UserError(
                f"{where}: the key in {self._secret_name} was refused ({message}); set a valid key in the "
                "environment and rerun to resume"
            )
        if error.code == 403:
            raise UserError(
                f"{where}: this key may not use {self.model} ({message}); check that the Gemini API is enabled "
                "for the key's project and has access to the model, or choose another generator.model"
            )
        if error.code == 404:
            raise UserError(
                f"{where} for model {self.model!r}: the model may be retired or not available to this key "
                f"({message}); set generator.model=<a current Gemini image model> (and its price in generator.prices)"
            )
        if error.code == 429:
            raise UserError(
                f"{where}: quota or rate limit still exceeded{self.attempts_note()} ({message}); lower "
                "generator.concurrency, wait, or raise the quota of the key's project, then rerun to resume"
            )
        if error.status == "FAILED_PRECONDITION":  # e.g. a region the API does not serve, or no billing
            raise UserError(f"{where}: {message}")

    def variation(self, response: types.GenerateContentResponse) -> Variation | SkipImage:
        """The last image of the answer (thought images excluded), a recorded refusal with its reason (a blocked
        prompt, or a finish reason that says why there is no image), or a recorded malformed answer."""
        details = {"request_id": response.response_id}
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            detail = f": {feedback.block_reason_message}" if feedback.block_reason_message else ""
            return self.refused(f"prompt blocked ({enum_name(feedback.block_reason)}{detail})", details)
        candidate = response.candidates[0] if response.candidates else None
        parts = (candidate.content.parts or []) if candidate is not None and candidate.content is not None else []
        images = [
            part.inline_data
            for part in parts
            if not part.thought and part.inline_data is not None and part.inline_data.data
        ]
        if not images:
            said = " ".join(part.text for part in parts if part.text and not part.thought)
            details |= {"model_said": self.safe(said)} if said else {}
            if candidate is None or candidate.finish_reason is None:
                return SkipImage("generate", "malformed answer: no candidate with an image or a finish reason", details)
            reason = f"no image in the response (finish reason {enum_name(candidate.finish_reason)}"
            reason += f": {candidate.finish_message})" if candidate.finish_message else ")"
            return self.refused(reason, details)
        image = self.checked_image(images[-1].data, details)  # the SDK has decoded the base64
        if isinstance(image, SkipImage):
            return image
        info = {
            "request_id": response.response_id,
            "model_version": response.model_version,
            "returned_size": f"{image.width}x{image.height}",
            "retries": self._ledger.attempts - 1,
        }
        if self._ledger.timed_out:
            info["possibly_billed_timeouts"] = self._ledger.timed_out
        if (usage := response.usage_metadata) is not None:
            info["usage"] = {
                "prompt_tokens": usage.prompt_token_count,
                "output_tokens": usage.candidates_token_count,
                "total_tokens": usage.total_token_count,
            }
        return Variation(image, info)

    def refused(self, reason: str, details: dict) -> SkipImage:
        with self._count_lock:
            self._refusals += 1
        return SkipImage("generate", f"refused: {self.safe(reason)}", details)
