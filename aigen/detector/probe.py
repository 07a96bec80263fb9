"""`model=clip_probe` and `model=dinov2_probe`: a linear head on the frozen image features of a pretrained backbone.

UnivFD (Ojha et al., "Towards Universal Fake Image Detectors that Generalize Across Generative Models", CVPR 2023)
probes CLIP; B-Free (Guillaro et al., CVPR 2025) and later detectors build on DINOv2 (Oquab et al., 2023). Only the
head is trained and saved; the backbone is named (hub id + revision, or a local folder) and loaded with
`from_pretrained`. `aigen/clip-tiny-random` and `aigen/dinov2-tiny-random` are tiny backbones with RANDOM weights,
built from a config with a fixed seed and saved once to the cache in the real model's layout, then loaded through
the same code: tests only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import transformers  # a lazy module: its model classes are imported when a backbone is built or loaded
from transformers.modeling_outputs import ImageClassifierOutput

from aigen.detector.data import IMAGENET_MEAN, IMAGENET_STD, LABELS, Preprocess
from aigen.errors import UserError
from aigen.pretrained import cached_build, location
from aigen.pretrained import load_error as pretrained_load_error

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

TINY_VERSION = "v1"
INIT_SEED = 0
TINY_TOWER = {"hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2}


def build_tiny_clip() -> tuple[PreTrainedModel, object]:
    """A CLIP with openai/clip-vit-large-patch14's layout (text and vision towers, both projections) at 64 px."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(INIT_SEED)
    tower = {**TINY_TOWER, "intermediate_size": 37}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 99, "max_position_embeddings": 16, "projection_dim": 16, "eos_token_id": 2},
        vision_config={**tower, "image_size": 64, "patch_size": 16, "projection_dim": 16},
        projection_dim=16,
    )
    processor = CLIPImageProcessorPil(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    return CLIPModel(config), processor


def build_tiny_dinov2() -> tuple[PreTrainedModel, object]:
    """A DINOv2 with facebook/dinov2-base's layout (ViT, layer scale, final layer norm) and preprocessing, at 64 px."""
    from transformers import BitImageProcessorPil, Dinov2Config, Dinov2Model

    torch.manual_seed(INIT_SEED)
    config = Dinov2Config(**TINY_TOWER, mlp_ratio=4, image_size=64, patch_size=8)
    processor = BitImageProcessorPil(
        size={"shortest_edge": 64},
        crop_size={"height": 64, "width": 64},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    return Dinov2Model(config), processor


@dataclass(frozen=True)
class Backbone:
    """What differs between backbone families: their transformers classes (by name), the feature a probe reads, the
    tiny twin."""

    label: str
    config_class: str
    processor_class: str
    model_class: str
    feature_dim: Callable[[PretrainedConfig], int]
    features: Callable[[object], torch.Tensor]  # the model's output -> one feature vector per image
    tiny_id: str
    build_tiny: Callable[[], tuple[PreTrainedModel, object]]


BACKBONES = {
    # The projected image embedding of CLIP's vision tower (UnivFD); the text tower of a full CLIP is not loaded.
    "clip": Backbone(
        "CLIP",
        "CLIPVisionConfig",
        "CLIPImageProcessorPil",
        "CLIPVisionModelWithProjection",
        lambda config: config.projection_dim,
        lambda output: output.image_embeds,
        "aigen/clip-tiny-random",
        build_tiny_clip,
    ),
    # DINOv2's class token after the final layer norm (its pooler output), as in its linear-probe evaluation.
    "dinov2": Backbone(
        "DINOv2",
        "Dinov2Config",
        "BitImageProcessorPil",
        "Dinov2Model",
        lambda config: config.hidden_size,
        lambda output: output.pooler_output,
        "aigen/dinov2-tiny-random",
        build_tiny_dinov2,
    ),
}


def backbone_family(family: str) -> Backbone:
    if family not in BACKBONES:
        raise UserError(f"model.family={family!r} is not one of {', '.join(BACKBONES)}")
    return BACKBONES[family]


def ensure_tiny(backbone: Backbone, cache_dir: str) -> Path:
    """The saved tiny twin, built on first use."""

    def save(folder: Path) -> None:
        model, processor = backbone.build_tiny()
        model.save_pretrained(folder)
        processor.save_pretrained(folder)

    return cached_build(cache_dir, f"{backbone.tiny_id.split('/')[-1]}-{TINY_VERSION}", save)


@dataclass(frozen=True)
class ProbeConfig:
    """What the checkpoint keeps to rebuild the probe: the backbone's family and name, the head's and inputs' shapes.
    (`family` defaults to clip: checkpoints written before DINOv2 probes existed.)"""

    backbone: str
    revision: str | None
    dim: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    family: str = "clip"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ProbeConfig:
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"])})


class FeatureProbe(torch.nn.Module):
    """The trained part: a linear layer from a frozen backbone's image feature to the two class logits."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__()
        self.config = config
        self.head = torch.nn.Linear(config.dim, len(LABELS))

    def forward(self, features: torch.Tensor) -> ImageClassifierOutput:
        return ImageClassifierOutput(logits=self.head(features))

    def preprocess(self, resize: str) -> Preprocess:
        """The backbone's input side and normalisation, with the detector's crop or resize."""
        return Preprocess(self.config.image_size, self.config.mean, self.config.std, resize)


def backbone_location(family: str, name: str, cache_dir: str) -> str:
    """What `from_pretrained` loads: the tiny twin's cache folder, a local folder, or the hub id."""
    backbone = backbone_family(family)
    if name == backbone.tiny_id:
        return str(ensure_tiny(backbone, cache_dir))
    return location(name)


def load_error(family: str, name: str, revision: str | None, error: Exception) -> UserError:
    return pretrained_load_error(f"{backbone_family(family).label} model", name, revision, error, "model.backbone")


def build_probe(family: str, backbone: str, revision: str | None, cache_dir: str) -> FeatureProbe:
    """A new probe for `backbone`: reads its config and preprocessing (not its weights) to size the head."""
    spec = backbone_family(family)
    location = backbone_location(family, backbone, cache_dir)
    transformers.utils.logging.set_verbosity_error()
    try:
        model_config = getattr(transformers, spec.config_class).from_pretrained(location, revision=revision)
        processor = getattr(transformers, spec.processor_class).from_pretrained(location, revision=revision)
    except (OSError, ValueError) as error:
        raise load_error(family, backbone, revision, error) from None
    config = ProbeConfig(
        backbone,
        revision,
        spec.feature_dim(model_config),
        processor.crop_size["height"],
        tuple(processor.image_mean),
        tuple(processor.image_std),
        family,
    )
    return FeatureProbe(config)


def load_backbone(config: ProbeConfig, cache_dir: str, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """The frozen backbone as a function from pixel values to one feature vector per image."""
    spec = backbone_family(config.family)
    transformers.utils.logging.set_verbosity_error()  # e.g. the unused text-tower weights of a full CLIP checkpoint
    try:
        location = backbone_location(config.family, config.backbone, cache_dir)
        model = getattr(transformers, spec.model_class).from_pretrained(location, revision=config.revision)
    except (OSError, ValueError) as error:
        raise load_error(config.family, config.backbone, config.revision, error) from None
    model = model.eval().requires_grad_(False).to(device)
    return lambda pixel_values: spec.features(model(pixel_values=pixel_values))
