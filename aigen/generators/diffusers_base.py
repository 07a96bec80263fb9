"""What every open (diffusers) generator shares: loading with `from_pretrained`, device and dtype, one
torch.Generator per image, compile, `batch_size=auto` from the free GPU memory (the arithmetic is in
aigen.generators.gpu), offload and quantize for big models, and the one-line load error.

A generator says only what differs: what `from_pretrained` loads (`load_model`), the settings that decide its
pixels (`settings`, `dir_tags`) and one pipeline call (`run`). `sd`, `vae`, `img2img`, `inpaint`, `unclip` and
`kandinsky` are built on it (aigen.generators.sd, aigen.generators.zoo); their tiny random-weight twins
(`*_tiny`) load through the very same code from a folder saved once to the local cache (aigen.generators.tiny).
"""

from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
import torch
from PIL import Image

from aigen import pretrained
from aigen.checks import number, text, whole_number
from aigen.devices import resolve_device
from aigen.errors import SkipImage, UserError
from aigen.generators.base import Generator, Variation
from aigen.generators.gpu import (
    CPU_BATCH,
    GIB,
    MIN_GIB_PER_IMAGE,
    auto_batch_size,
    compile_module,
    free_cuda_bytes,
    too_big_for_the_gpu,
    torchao_config,
    torchao_installed,
)
from aigen.generators.tiny_registry import TINY_MODELS, ensure_tiny_model, tiny_model_id
from aigen.native import DEFAULT_MAX_SIDE, NATIVE, check_gen_size, check_max_side, same_side_groups
from aigen.preprocess import to_square
from aigen.words import counted

log = logging.getLogger(__name__)
# diffusers and transformers are imported where a model is loaded: they take seconds to import, and a mistake in
# the settings is reported before that.

EMPTY_FLOAT32_NOTICE = "should be kept in float32: []."  # diffusers, on each `.to(dtype)`, naming no module
TRUNCATION_NOTICE = "can only handle sequences up to"  # a CLIP tokenizer cut a long prompt


class QuietNotices(logging.Filter):
    """diffusers notices that tell an aigen user nothing: the float32 one with an empty list (SDXL's inpaint
    pipeline casts its VAE around every encode and diffusers warns each time), and, while a tiny twin generates, its
    byte-level tokenizer's cut of a long instruction (a real CLIP tokenizer keeps such a prompt whole)."""

    def __init__(self) -> None:
        super().__init__()
        self.tiny_generating = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return EMPTY_FLOAT32_NOTICE not in message and not (self.tiny_generating and TRUNCATION_NOTICE in message)


QUIET_NOTICES = QuietNotices()

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ALIGNMENTS = ("pixel", "semantic")  # pixel: the fake is the real photo regenerated in place; semantic: its content

# Big models on one GPU. offload: diffusers' CPU offload (accelerate hooks), `model` moves one whole component to
# the GPU while it runs, `sequential` one submodule at a time (least memory, slowest). quantize: the denoiser's
# weights as 8-bit numbers (torchao, weight-only), half the memory of 16-bit weights; other pixels.
OFFLOADS = ("none", "model", "sequential")
QUANTIZATIONS = ("none", "fp8", "int8")
DENOISERS = ("transformer", "unet")  # what quantize shrinks: the pipeline component with most of the weights
SEQUENTIAL_RESIDENT_GIB = 0.5  # offload=sequential: the largest submodule on the GPU at a time (an estimate)


def is_scheduler_class(name: object) -> bool:
    """Whether `name` names a diffusers scheduler class (e.g. DDIMScheduler)."""
    import diffusers

    return isinstance(name, str) and name.endswith("Scheduler") and hasattr(diffusers, name)


def resolve_dtype(dtype: str, device: torch.device, cuda_default: torch.dtype = torch.float16) -> torch.dtype:
    """fp16 on CUDA (the models' published precision), fp32 elsewhere (CPU half precision is slow)."""
    if dtype == "auto":
        return cuda_default if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise UserError(f"generator.dtype={dtype!r} is not one of auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def check_prior_model(prior_model: object, prior_revision: object, tiny: str | None) -> None:
    """A second repository a generator loads (Kandinsky's and Redux's priors): a hub id, or a folder that exists."""
    text("generator.prior_model", prior_model)
    text("generator.prior_revision", prior_revision, optional=True)
    if tiny is None and pretrained.is_local_path(prior_model) and not os.path.isdir(os.path.expanduser(prior_model)):
        raise UserError(f"generator.prior_model={prior_model!r}: folder does not exist")


def short_hash(*texts: str | None) -> str:
    return hashlib.sha256(repr(texts).encode()).hexdigest()[:8]


def model_tag(model: str) -> str:
    """The last part of a hub id or folder, for dataset dir names (`stabilityai/sd-vae-ft-mse` -> `sd-vae-ft-mse`)."""
    return os.path.basename(os.path.normpath(os.path.expanduser(model))) or model


# ------------------------------------------------------------------------------------------------------- base


class DiffusersGenerator(Generator):
    """An open generator loaded with `from_pretrained` (hub id + revision, or a local folder; subfolder, variant).

    Subclasses set `alignment`, the memory estimates, and implement `load_model`, `run` and `settings`.
    The safety checker is never loaded: it replaces images it flags with black squares, which would poison a
    detector's training set.
    """

    alignment: str = "semantic"
    kind: str = "pipeline"  # "pipeline": from_pretrained of a whole pipeline; "component": one model (subfolder)
    pipeline_class: str  # the diffusers class `load_model` loads by default, by name (imported when it loads)
    auto_cuda_dtype = torch.float16  # what dtype=auto means on CUDA
    # batch_size=auto estimates (float16, 512 px; scaled by (gen_size/512)^2 and by the dtype's size): the model's
    # weights, what each image of a batch adds (denoiser activations, both halves when guidance > 1) and what the
    # autoencoder adds per image when it decodes the whole batch at once (paid once with vae_slicing).
    # ESTIMATES from parameter counts and activation shapes, not measured: see benchmarks/gpu.py. Each generator
    # states its own.
    weight_gib: float
    denoise_gib_per_image: float
    decode_gib_per_image: float
    # The weights by component (16-bit GiB, summing to weight_gib) where a generator states them: then quantize
    # shrinks the denoiser's share and offload=model keeps only the largest component on the GPU. Without them
    # the estimates stay at weight_gib (safe: too large, never too small).
    components_gib: dict[str, float] | None = None
    native_sides: bool = False  # whether gen_size=native is supported (the pixel-aligned generators: aigen.native)

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        gen_size: int = 512,
        device: str = "auto",
        dtype: str = "auto",
        name: str = "diffusers",
        weights: str = "pretrained",
        input_side: int | None = None,
        compile: bool = False,
        subfolder: str | None = None,
        variant: str | None = None,
        scheduler: str | None = None,
        vae_slicing: bool = False,
        vae_tiling: bool = False,
        tiny: str | None = None,
        cache_dir: str | None = None,
        license: str | None = None,
        offload: str = "none",
        quantize: str = "none",
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> None:
        check_gen_size(gen_size)
        check_max_side(max_side)
        if gen_size == NATIVE and not self.native_sides:
            raise UserError(
                f"generator.gen_size=native: {name} does not regenerate the photo in place; native resolution is "
                "for the pixel-aligned generators (vae, img2img, inpaint and those built on them) and the controls"
            )
        if gen_size == NATIVE and input_side is not None:
            raise UserError("generator.input_side must be null with generator.gen_size=native (full-resolution pixels)")
        if input_side is not None:
            whole_number("generator.input_side", input_side, 8)
        for option, value in (("compile", compile), ("vae_slicing", vae_slicing), ("vae_tiling", vae_tiling)):
            if not isinstance(value, bool):
                raise UserError(f"generator.{option}={value!r} must be true or false")
        for option, value in (("revision", revision), ("subfolder", subfolder), ("variant", variant)):
            text(f"generator.{option}", value, optional=True)
        if tiny is not None:
            if tiny not in TINY_MODELS:
                raise UserError(f"generator.tiny={tiny!r} is not one of {', '.join(TINY_MODELS)}")
            if (model, revision) != tiny_model_id(tiny):  # rows would name a model that made none of their pixels
                own, own_revision = tiny_model_id(tiny)
                raise UserError(
                    f"generator.model={model} (revision {revision}): {name} is a tiny random-weight twin that always "
                    f"loads its own {own} at {own_revision}; for another model use a generator without _tiny"
                )
            weights = "random"
            if cache_dir is None:
                raise UserError("generator.cache_dir must be set for a tiny random-weight model")
        elif weights == "pretrained":
            text("generator.model", model)
            folder = os.path.expanduser(model)
            if pretrained.is_local_path(model) and not os.path.isdir(folder):
                raise UserError(f"generator.model={model!r}: folder does not exist (a hub id looks like org/name)")
            if subfolder and pretrained.is_local_path(model) and not os.path.isdir(os.path.join(folder, subfolder)):
                raise UserError(f"generator.subfolder={subfolder!r}: no such folder in {folder}")
        if subfolder and self.kind != "component":
            raise UserError(
                f"generator.subfolder={subfolder!r}: {name} loads a whole pipeline from the repository's root; "
                "a subfolder applies to one component (generator=vae)"
            )
        if scheduler is not None and not is_scheduler_class(scheduler):
            raise UserError(
                f"generator.scheduler={scheduler!r} is not a diffusers scheduler class (e.g. DDIMScheduler, "
                "DPMSolverMultistepScheduler); null keeps the model's own"
            )
        device_object = resolve_device(device)  # a bad device or dtype is one line now, not after loading
        resolve_dtype(dtype, device_object, self.auto_cuda_dtype)
        self.check_big_model_options(offload, quantize, device_object)
        self.name = name
        self.model = model
        self.revision = revision
        self.gen_size = gen_size
        self.max_side = max_side
        self.device = device
        self.dtype = dtype
        self.weights = weights
        self.input_side = input_side
        self.compile = compile
        self.subfolder = subfolder
        self.variant = variant
        self.scheduler = scheduler
        self.vae_slicing = vae_slicing
        self.vae_tiling = vae_tiling
        self.tiny = tiny
        self.cache_dir = os.path.expanduser(cache_dir) if cache_dir else None
        self.license = license  # the weights' licence, for the dataset card (not a pixel setting)
        self.offload = offload
        self.quantize = quantize
        self._pipe = None
        self._scheduler_class: str | None = None

    def check_big_model_options(self, offload: str, quantize: str, device: torch.device) -> None:
        """offload and quantize: known values, a whole pipeline, a GPU to offload to, torchao to quantize with."""
        if offload not in OFFLOADS:
            raise UserError(f"generator.offload={offload!r} is not one of {', '.join(OFFLOADS)}")
        if quantize not in QUANTIZATIONS:
            raise UserError(f"generator.quantize={quantize!r} is not one of {', '.join(QUANTIZATIONS)}")
        for option, value in (("offload", offload), ("quantize", quantize)):
            if value != "none" and self.kind != "pipeline":
                raise UserError(f"generator.{option}={value}: applies to a whole pipeline, not to one component")
        if offload != "none" and device.type == "cpu":
            raise UserError(
                f"generator.offload={offload} moves weights between the CPU and a GPU, but generator.device is the "
                "CPU: set generator.offload=none"
            )
        if quantize != "none" and not torchao_installed():
            raise UserError(f"generator.quantize={quantize} needs torchao: pip install 'aigen[quantize]' (or torchao)")

    # -- what decides the pixels

    def settings(self) -> dict:
        """This generator's own settings that decide its pixels (steps, strength, prompt, ...)."""
        return {}

    def describe(self) -> dict:
        described = {
            "generator": self.name,
            "model": self.model,
            "revision": self.revision,
            "weights": self.weights,
            **({"subfolder": self.subfolder} if self.subfolder else {}),
            **({"variant": self.variant} if self.variant else {}),
            "alignment": self.alignment,
            **self.settings(),
            "gen_size": self.gen_size,
            **({"max_side": self.max_side} if self.native else {}),
        }
        if self.kind == "pipeline":
            described["scheduler"] = self.scheduler  # null: the model's own (each row names its class)
        if self.vae_tiling:  # tiles are blended: other pixels (slicing only splits the batch)
            described["vae_tiling"] = True
        return described | self.big_model_options()

    def big_model_options(self) -> dict:
        """offload and quantize where used: fingerprinted then (a dataset made before they existed keeps its
        fingerprint); every row names both (`generate`)."""
        return {
            option: value
            for option, value in (("offload", self.offload), ("quantize", self.quantize))
            if value != "none"
        }

    def big_model_tags(self) -> list[str]:
        """Dir-name tags for offload and quantize where used (`quantize_int8`): their datasets get their own
        default dir instead of meeting another fingerprint in the plain one."""
        return [f"{option}_{value}" for option, value in self.big_model_options().items()]

    def plan(self, count: int, whole: int | None = None) -> str:
        device = resolve_device(self.device)
        big = "".join(f", {option}={value}" for option, value in self.big_model_options().items())
        return (
            f"{self.name}: {counted(count, 'image')} with {self.model} ({self.weights} weights), "
            f"{self.plan_detail()}, on {device}{big}"
        )

    def plan_detail(self) -> str:
        return f"{self.alignment} alignment"

    # -- batch_size=auto

    def resident_weight_gib(self, width: float) -> float:
        """The weights kept on the GPU at once, in GiB, at `width` times 16 bits: all of them; with quantize the
        denoiser's at 8 bits; with offload=model only the largest component; with offload=sequential about one
        submodule."""
        if self.offload == "sequential":
            return SEQUENTIAL_RESIDENT_GIB
        components = dict(self.components_gib or {"pipeline": self.weight_gib})
        sizes = {name: gib * width for name, gib in components.items()}
        if self.quantize != "none":
            for name in DENOISERS:
                if name in sizes:
                    sizes[name] = components[name] / 2  # 8-bit weights
        return max(sizes.values()) if self.offload == "model" else sum(sizes.values())

    def memory_estimate(self, dtype: torch.dtype) -> tuple[float, float]:
        """(weight bytes, bytes per image of a batch) at this gen_size and dtype, from the class's estimates, with
        offload and quantize."""
        scale = (self.largest_side() / 512) ** 2
        width = torch.finfo(dtype).bits / 16  # the estimates are for 16-bit weights and activations
        decode = 0.0 if self.vae_slicing or self.vae_tiling else self.decode_gib_per_image
        per_image = max(self.denoise_gib_per_image + decode, MIN_GIB_PER_IMAGE) * scale * width * GIB
        fixed = self.resident_weight_gib(width) * GIB
        if self.vae_slicing or self.vae_tiling:
            fixed += self.decode_gib_per_image * scale * width * GIB  # one image at a time
        return fixed, per_image

    def largest_side(self) -> int:
        """The largest side an image is generated at: gen_size, or max_side when native."""
        return self.max_side if self.native else self.gen_size

    def default_batch_size(self) -> int:
        """On CUDA: from the free memory now (before the weights are loaded), the weights and the per-image
        estimate; 4 on a CPU (more gains nothing there and delays the first pairs)."""
        device = resolve_device(self.device)
        if device.type != "cuda":
            return CPU_BATCH
        dtype = resolve_dtype(self.dtype, device, self.auto_cuda_dtype)
        fixed, per_image = self.memory_estimate(dtype)
        return auto_batch_size(free_cuda_bytes(device), fixed, per_image)

    def check_fits(self, weight_bytes: float, free_bytes: int) -> None:
        message = too_big_for_the_gpu(self.name, weight_bytes, free_bytes, self.offload, self.quantize)
        if message:
            raise UserError(message)

    # -- loading

    def pretrained_location(self) -> str:
        """What `from_pretrained` loads: the hub id or local folder as configured, or the saved tiny model."""
        if self.tiny:
            return str(ensure_tiny_model(self.tiny, self.cache_dir))
        return pretrained.location(self.model)

    def from_pretrained(self, loader, location: str, dtype: torch.dtype | None, revision: str | None = None, **extra):
        """`loader.from_pretrained(location, revision, dtype, variant, ...)` (the revision is the generator's unless
        given); what fails becomes the one-line load error, naming the model and how to point at a local copy."""
        revision = revision if revision is not None else self.revision
        kwargs = {"revision": revision, **({"dtype": dtype} if dtype is not None else {}), **extra}
        if self.variant and dtype is not None:
            kwargs["variant"] = self.variant
        try:
            return loader.from_pretrained(location, **kwargs)
        except (OSError, ValueError) as error:
            raise UserError(self.load_error(error, location, revision)) from None

    def pipeline_kwargs(self, loader, location: str) -> dict:
        """`safety_checker=None` for a pipeline that has one (read from its model_index.json), so it is never loaded."""
        import diffusers

        try:
            config = diffusers.DiffusionPipeline.load_config(location, revision=self.revision)
        except (OSError, ValueError) as error:
            raise UserError(self.load_error(error, location, self.revision)) from None
        kwargs = {}
        if "safety_checker" in config:
            kwargs |= {"safety_checker": None, "requires_safety_checker": False}
        if self.quantize != "none":
            denoiser = next((name for name in DENOISERS if name in config), None)
            if denoiser is None:
                raise UserError(f"generator.quantize={self.quantize}: {location} has no transformer or unet")
            mapping = {denoiser: torchao_config(self.quantize)}
            kwargs["quantization_config"] = diffusers.PipelineQuantizationConfig(quant_mapping=mapping)
        return kwargs

    def load_model(self, location: str, dtype: torch.dtype):
        """The loaded pipeline (or model); the default loads `self.pipeline_class` as a whole pipeline."""
        import diffusers

        loader = getattr(diffusers, self.pipeline_class)  # by name: importing the AutoPipelines imports every pipeline
        return self.from_pretrained(loader, location, dtype, **self.pipeline_kwargs(loader, location))

    def load(self) -> None:
        import diffusers
        import transformers

        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device, self.auto_cuda_dtype)
        if device.type == "cuda" and not self.tiny:  # too big for the GPU: stop before loading, naming the options
            self.check_fits(self.memory_estimate(dtype)[0], free_cuda_bytes(device))
        diffusers.utils.logging.disable_progress_bar()
        for handler in logging.getLogger("diffusers").handlers:  # its records reach only its own handler
            handler.addFilter(QUIET_NOTICES)
        transformers.utils.logging.set_verbosity_error()  # e.g. "CLIPImageProcessor requires torchvision"
        transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars
        self.attach(self.load_model(self.pretrained_location(), dtype), device)
        log.info("loaded %s (%s weights) on %s as %s", self.model, self.weights, device, dtype)

    def attach(self, pipe, device: torch.device) -> None:
        """Make a loaded pipeline (or model) this generator's: checks, scheduler, VAE options, device, compile.
        (benchmarks/gpu.py attaches full-size random-weight pipelines built in code the same way.)"""
        import diffusers

        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        self.check_loaded(pipe)
        if self.scheduler and type(pipe.scheduler).__name__ != self.scheduler:
            pipe.scheduler = getattr(diffusers, self.scheduler).from_config(pipe.scheduler.config)
        if getattr(pipe, "scheduler", None) is not None:
            self._scheduler_class = type(pipe.scheduler).__name__
        autoencoder = self.autoencoder(pipe)
        if autoencoder is not None:
            if self.native:
                self.native_multiple = self.side_multiple(pipe, autoencoder)
            if self.vae_slicing:
                autoencoder.enable_slicing()
            if self.vae_tiling:
                autoencoder.enable_tiling()
        self._pipe = self.place(pipe, device)
        if self.compile:
            # CUDA graphs remove the per-step launch overhead; compiling takes about a minute, once per shape.
            for module in self.compiled_modules(self._pipe):
                compile_module(module, device)

    def place(self, pipe, device: torch.device):
        """The pipeline on `device`, or behind diffusers' CPU offload hooks that move its weights there in turn."""
        if self.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
            return pipe
        if self.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
            return pipe
        return pipe.to(device)

    def check_loaded(self, pipe) -> None:
        """Refuse a loaded model this generator cannot use as configured (one line, before any work)."""

    def autoencoder(self, pipe):
        return getattr(pipe, "vae", None) or getattr(pipe, "movq", None)

    @staticmethod
    def side_multiple(pipe, autoencoder) -> int:
        """What a native side must be a multiple of: the autoencoder's downsampling (8 for SD's), twice that under a
        transformer, whose latents are packed (FLUX) or patched (SD 3) 2x2."""
        factor = 2 ** (len(autoencoder.config.block_out_channels) - 1)
        return 2 * factor if getattr(pipe, "transformer", None) is not None else factor

    def compiled_modules(self, pipe) -> list[torch.nn.Module]:
        """What compile=true compiles: the denoiser, whose calls dominate the time."""
        return [module for module in (getattr(pipe, "unet", None), getattr(pipe, "transformer", None)) if module]

    def load_error(self, error: Exception, location: str | None = None, revision: str | None = None) -> str:
        """One line: what failed, and the way out that fits (a local folder, or the hub cache when offline)."""
        where = location or self.pretrained_location()
        revision = revision if revision is not None else self.revision
        option = "generator.prior_model" if where == getattr(self, "prior_model", None) else "generator.model"
        return str(pretrained.load_error("model", where, revision, error, option))

    # -- generation

    def prepare(self, square: Image.Image) -> Image.Image:
        """The square photo at gen_size (Pillow only: this runs on worker threads, no torch arithmetic here); when
        native, the factory has already cut it to its native grid (aigen.native)."""
        return square if self.native else to_square(square, self.gen_size)

    def torch_generators(self, seeds: list[int]) -> list[torch.Generator]:
        """One generator per image, seeded with that image's own seed: an image never depends on its batch."""
        device = getattr(self._pipe, "_execution_device", self._pipe.device)  # the GPU, also when offloaded
        return [torch.Generator(device=device).manual_seed(seed) for seed in seeds]

    def run(self, inputs: list, generators: list[torch.Generator]) -> list[Image.Image]:
        raise NotImplementedError

    def generate(self, inputs: list, seeds: list[int]) -> list[Variation | SkipImage]:
        """One `run` per side (native squares of a batch differ; a model call stacks one side), in input order."""
        groups = same_side_groups(inputs) if self.native else [list(range(len(inputs)))]
        images: list[Image.Image] = [None] * len(inputs)
        QUIET_NOTICES.tiny_generating = bool(self.tiny)
        try:
            with torch.inference_mode():
                for group in groups:
                    generated = self.run([inputs[i] for i in group], self.torch_generators([seeds[i] for i in group]))
                    for index, image in zip(group, generated, strict=True):
                        images[index] = image
        finally:
            QUIET_NOTICES.tiny_generating = False
        for image, given in zip(images, inputs, strict=True):
            expected = given.width if self.native else self.gen_size
            if image.size != (expected, expected):
                raise UserError(
                    f"{self.name} returned {image.width}x{image.height} images for {expected}x{expected} "
                    f"(generator.gen_size={self.gen_size}): choose a gen_size the model supports"
                )
        info = {"scheduler": self._scheduler_class} if self._scheduler_class else {}
        if self.kind == "pipeline":
            info |= {"offload": self.offload, "quantize": self.quantize}
        return [Variation(image, dict(info) | self.tiling_info(image.width)) for image in images]

    def tiling_info(self, side: int) -> dict:
        """With vae_tiling, whether this image's side was tiled (diffusers tiles above the autoencoder's sample
        size only): native squares of one dataset can differ. Empty otherwise (rows as before)."""
        autoencoder = self.autoencoder(self._pipe) if self.vae_tiling and self.native else None
        if autoencoder is None or not hasattr(autoencoder, "tile_sample_min_size"):
            return {}
        return {"vae_tiled": side > autoencoder.tile_sample_min_size}


class PriorGenerator(DiffusersGenerator):
    """A generator whose image conditioning comes from a prior in a second repository (Kandinsky 2.2's, FLUX.1
    Redux's): the prior and its revision decide the pixels, with the steps and the guidance."""

    tiny_prior_folder = ""  # where a tiny twin keeps its prior, inside its own folder ("": beside the base model)

    def __init__(
        self,
        model: str,
        revision: str | None,
        prior_model: str,
        prior_revision: str | None,
        steps: int,
        guidance_scale: float,
        gen_size: int,
        name: str,
        **options,
    ) -> None:
        whole_number("generator.steps", steps, 1)
        self.guidance_scale = number("generator.guidance_scale", guidance_scale, low=0)
        check_prior_model(prior_model, prior_revision, options.get("tiny"))
        super().__init__(model, revision, gen_size, name=name, **options)
        own_prior = "/".join(filter(None, (model, self.tiny_prior_folder)))
        if self.tiny and (prior_model, prior_revision) != (own_prior, revision):
            raise UserError(
                f"generator.prior_model={prior_model} (revision {prior_revision}): {name} is a tiny random-weight twin "
                f"that always loads its own prior {own_prior} at {revision}; for another prior use a generator without "
                "_tiny"
            )
        self.prior_model = prior_model
        self.prior_revision = prior_revision
        self.steps = steps

    def settings(self) -> dict:
        return {
            "prior_model": self.prior_model,
            "prior_revision": self.prior_revision,
            "steps": self.steps,
            "guidance_scale": self.guidance_scale,
        }

    def dir_tags(self) -> list[str]:
        return [model_tag(self.model), f"g{self.guidance_scale}", *self.big_model_tags()]

    def prior_location(self) -> str:
        """The prior's folder: inside a tiny twin's own; for a real model its own repository (or local path)."""
        if self.tiny:
            base = self.pretrained_location()
            return os.path.join(base, self.tiny_prior_folder) if self.tiny_prior_folder else base
        return pretrained.location(self.prior_model)

    def load_prior(self, loader, dtype: torch.dtype | None, **extra):
        """A prior component at `prior_revision`, `main` when unset: not the base model's revision, which names a
        commit of another repository (a tiny twin's prior is a local folder, where revisions do not apply)."""
        revision = None if self.tiny else self.prior_revision or "main"
        return self.from_pretrained(loader, self.prior_location(), dtype, revision=revision, **extra)


def pixels_to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """A batch of RGB images as floats in [-1, 1], NCHW (what autoencoders take)."""
    array = np.stack([np.asarray(image, dtype=np.uint8) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def tensor_to_images(batch: torch.Tensor) -> list[Image.Image]:
    """[-1, 1] NCHW floats back to RGB images, rounded as diffusers' own postprocessing does."""
    array = ((batch.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray((image * 255).round().astype(np.uint8)) for image in array]
