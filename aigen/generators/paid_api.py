"""What the paid image APIs (OpenAI, Gemini) share: money, keys, messages and the requests of one batch.

- `PaidAPI` prices the whole dataset from the YAML price table and refuses a run above `max_cost` before anything
  is sent (`plan`); it reads the key only from the environment, sends one batch's requests on `concurrency`
  threads with a stop flag, and counts requests that timed out after they were sent (they may have been billed).
- `LedgerTransport` is the SDKs' HTTP transport with a per-thread ledger of the attempts their own retries send.
- `one_line` makes a server message safe for a log or failures.jsonl: one line, short, no key in it.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx2
from omegaconf import DictConfig, OmegaConf
from PIL import Image, UnidentifiedImageError

from aigen.checks import whole_number
from aigen.errors import RunStopped, SkipImage, UserError
from aigen.generators.base import Generator, Variation
from aigen.preprocess import to_square
from aigen.words import counted

CONNECTION_FAILURES_TO_STOP = 3  # photos in a row whose requests could not connect: no network, stop
KEY_LIKE = {  # key shapes scrubbed from any message, whoever's key it is: OpenAI's and Google's
    re.compile(r"\bsk-[A-Za-z0-9_*.\-]{3,}"): "sk-***",
    re.compile(r"\bAIza[A-Za-z0-9_\-]{8,}"): "AIza***",
}


def one_line(text: object, secret: str | None = None, limit: int = 300, secret_name: str = "API key") -> str:
    """A server message made safe for a log or failures.jsonl: one line, short, and with no key in it."""
    text = str(text)
    if secret:
        text = text.replace(secret, f"<{secret_name}>")
    for pattern, mask in KEY_LIKE.items():
        text = pattern.sub(mask, text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ScrubKey(logging.Filter):
    """Takes the key out of an SDK's log records (its retry lines quote the server's answer) before any handler,
    Hydra's run.log included, sees them."""

    def __init__(self, secret: str, secret_name: str) -> None:
        super().__init__()
        self.secret = secret
        self.secret_name = secret_name

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = one_line(record.getMessage(), self.secret, limit=2000, secret_name=self.secret_name)
        record.args = ()
        return True


class LedgerTransport(httpx2.HTTPTransport):
    """The SDK's HTTP transport, keeping a ledger per thread of the attempts the SDK's retries send and of those
    that timed out after the request was sent (the API may have billed those). `inspect` lets a subclass act on
    an answer before the SDK sees it (e.g. mark an empty quota as not worth retrying)."""

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
        self.inspect(response)
        return response

    def inspect(self, response: httpx2.Response) -> None:
        """Look at an answer before the SDK does; the default leaves it as it is."""


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


WRONG_SIZE = "the API returned an image of another size"
WRONG_SIZES_TO_STOP = 3  # in a row: the model or server does not serve the size asked for, and each is paid for


def returned_image(data: bytes, side: int, details: dict) -> Image.Image | SkipImage:
    """The API's image as RGB, or a recorded skip: bytes that do not decode (the reason without Pillow's file
    object, so that alike failures share one reason), or a size other than the `side` x `side` asked for (its
    original half went through `side`: cropping the AI half to a square of another side would pair unlike paths)."""
    try:
        with Image.open(io.BytesIO(data)) as returned:
            image = returned.convert("RGB")
    except UnidentifiedImageError:
        return SkipImage("generate", "the returned image does not decode: not an image file", details)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return SkipImage("generate", f"the returned image does not decode: {error}", details)
    if image.size != (side, side):
        return SkipImage(
            "generate", f"{WRONG_SIZE}: {image.width}x{image.height} for the {side}x{side} asked for", details
        )
    return image


def plain(value: object) -> object:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


class PaidAPI(Generator):
    """A generator that pays per image: price table, budget, key, concurrency, and the ledger of retries.

    Subclasses set `key_envs`, `default_url` and `base_url_env`, and give `price_path`, `settings_line`, `load`
    (which calls `read_key` and `start_ledger`) and `call` (one photo, the SDK's errors turned into a skip or a
    UserError). `seeds` are not used: the image APIs take no seed, the pair written is the record.
    """

    seeded = False
    paid = True

    key_envs: tuple[str, ...] = ()  # where the key may be, in the SDK's order of precedence
    default_url = ""  # the SDK's endpoint when neither generator.base_url nor `base_url_env` is set (for messages)
    base_url_env = ""

    def __init__(
        self,
        name: str,
        model: str,
        prices: Mapping | None = None,
        price: float | None = None,
        max_cost: float = 5.0,
        dry_run: bool = False,
        base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        concurrency: int = 4,
        license: str | None = None,  # the model's or its outputs' terms, for the dataset card
    ) -> None:
        self.name = name
        self.model = model
        self.license = license
        self.prices = plain(prices) or {}
        self.price = price
        self.max_cost = max_cost
        self.dry_run = bool(dry_run)
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self._secret: str | None = None
        self._secret_name = self.key_envs[0]
        self._ledger: LedgerTransport | None = None
        self._connections = ConnectionWatch(self.host())
        self._possibly_billed = 0
        self._wrong_sizes = 0  # images of another size than asked for, in a row
        self._count_lock = threading.Lock()

    def check(self) -> None:
        """The settings, checked where a UserError reaches the user as one line.

        Not in __init__: Hydra's `instantiate` wraps any exception there in an InstantiationException. The factory
        calls `describe()` first (before it creates the dataset dir), so that is where this runs.
        """
        if not self.model:
            raise UserError(f"generator.model is empty: set the model name in conf/generator/{self.name}.yaml")
        for option, value, low in (("concurrency", self.concurrency, 1), ("max_retries", self.max_retries, 0)):
            whole_number(f"generator.{option}", value, low)
        for option, value in (("timeout", self.timeout), ("max_cost", self.max_cost)):
            # `not value >= 0` is also true of nan, which every comparison with a cost would let through
            if not isinstance(value, (int, float)) or not value >= 0 or (option == "timeout" and value == 0):
                raise UserError(f"generator.{option}={value!r} must be a positive number")

    def default_batch_size(self) -> int:
        """Several rounds of `concurrency` requests per batch, so one slow request idles few slots."""
        return 4 * self.concurrency

    # -- money ----------------------------------------------------------------------------------------------

    def price_path(self) -> list[str]:
        """The keys of this run's price in `generator.prices`, e.g. model / size."""
        raise NotImplementedError

    def settings_line(self) -> str:
        raise NotImplementedError

    def price_per_image(self) -> float:
        """USD per image: `price` if set, else the table entry at `price_path()`."""
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
        if isinstance(node, bool) or not isinstance(node, (int, float)) or not 0 <= node < math.inf:
            raise UserError(f"{where} = {node!r} is not a price (USD per image, a number 0 or more)")
        return float(node)

    def host(self) -> str:
        url = self.base_url or os.environ.get(self.base_url_env) or self.default_url
        parts = urlsplit(url)
        return parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else url

    def plan(self, count: int, whole: int | None = None) -> str:
        """`max_cost` bounds the whole dataset: a shard refuses when the images still missing over all shards
        (`whole`) would cost more, so N shards cannot spend N times the cap."""
        self.check()
        price = self.price_per_image()
        whole = count if whole is None else whole
        cost = whole * price
        scope = counted(whole, "image")
        if whole != count:
            scope = f"{counted(count, 'image')} in this shard, {whole} in all shards"
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

    def read_key(self) -> str:
        """The key from the first of `key_envs` that is set; never from the config."""
        for env in self.key_envs:
            if secret := os.environ.get(env, "").strip():
                self._secret, self._secret_name = secret, env
                return secret
        raise UserError(
            f"{' or '.join(self.key_envs)} is not set: export it in the environment (a key is never read from the "
            "config); generator.dry_run=true shows the plan and cost without one"
        )

    def safe(self, text: object, limit: int = 300) -> str:
        """`one_line` with this run's key taken out."""
        return one_line(text, self._secret, limit, self._secret_name)

    def start_ledger(self, ledger: LedgerTransport, *sdk_loggers: str) -> LedgerTransport:
        """Use `ledger` as the SDK's transport; quiet the per-request INFO lines and scrub the key from the SDK's
        own log records."""
        self._ledger = ledger
        for name in ("httpx", "httpx2"):  # one INFO line per request would drown the progress bar
            logging.getLogger(name).setLevel(logging.WARNING)
        scrub = ScrubKey(self._secret, self._secret_name)
        for name in sdk_loggers:
            logging.getLogger(name).addFilter(scrub)
        return ledger

    # -- generation -----------------------------------------------------------------------------------------

    def generate(self, uploads: list, seeds: list[int]) -> list[Variation | SkipImage]:
        """One request per photo, `concurrency` at a time; `seeds` are ignored (the APIs take none).

        A UserError in any request (bad key, retired model, empty quota, no network) sets a stop flag that every
        other request checks before it is sent; once all threads are back, RunStopped carries the results that
        did arrive, so that images already paid for are written before the run stops.
        """
        stop = threading.Event()
        fatal: list[UserError] = []

        def task(upload) -> Variation | SkipImage | None:
            if stop.is_set():
                return None
            try:
                return self.request(upload)
            except UserError as error:
                stop.set()
                fatal.append(error)
                return None
            except Exception as error:  # noqa: BLE001 - one photo's surprise must not cost the batch
                return SkipImage("generate", self.safe(f"{type(error).__name__}: {error}"))

        pool = ThreadPoolExecutor(max_workers=min(self.concurrency, len(uploads)), thread_name_prefix=self.name)
        try:
            futures = [pool.submit(task, upload) for upload in uploads]
            results = [future.result() for future in futures]
        except BaseException:  # Ctrl-C while waiting: nothing more is sent
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        if fatal:
            raise RunStopped(str(fatal[0]), results)
        return results

    def request(self, upload) -> Variation | SkipImage:
        """Send one photo (the SDK retries what may pass later) and count the attempts that may have been billed."""
        self._ledger.start()
        try:
            return self.call(upload)
        finally:
            if self._ledger.timed_out:
                with self._count_lock:
                    self._possibly_billed += self._ledger.timed_out

    def call(self, upload) -> Variation | SkipImage:
        raise NotImplementedError

    def checked_image(self, data: bytes, details: dict) -> Image.Image | SkipImage:
        """returned_image, and the run stopped in one line when WRONG_SIZES_TO_STOP come back in a row."""
        image = returned_image(data, self.side, details)
        with self._count_lock:
            wrong = isinstance(image, SkipImage) and image.reason.startswith(WRONG_SIZE)
            self._wrong_sizes = self._wrong_sizes + 1 if wrong else 0
            stop = self._wrong_sizes >= WRONG_SIZES_TO_STOP
        if stop:
            raise UserError(
                f"{image.reason} ({WRONG_SIZES_TO_STOP} in a row from {self.host()}): this model or server does not "
                f"serve that size; choose one it does ({self.settings_line()})"
            )
        return image

    def attempts_note(self) -> str:
        """What the SDK's retries did for this photo, and whether the API may have billed it."""
        note = f" (gave up after {self._ledger.attempts - 1} retries)" if self._ledger.attempts > 1 else ""
        if self._ledger.timed_out:
            note += f"; {self._ledger.timed_out} request(s) timed out after being sent and may have been billed"
        return note
