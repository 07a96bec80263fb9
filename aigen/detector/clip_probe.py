"""`model=clip_probe`: a linear head on frozen CLIP image features, as in UnivFD (Ojha et al., "Towards Universal
Fake Image Detectors that Generalize Across Generative Models", CVPR 2023).

Only the head is trained and saved; the backbone is named (hub id + revision, or a local folder) and loaded with
`from_pretrained`. `aigen/clip-tiny-random` is a tiny CLIP with RANDOM weights, built from a config with a fixed
seed and saved once to the cache in the real model's layout, then loaded through the same code: tests only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import transformers
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPVisionConfig, CLIPVisionModelWithProjection
from transformers.modeling_outputs import ImageClassifierOutput

from aigen.detector.data import LABELS, Preprocess
from aigen.errors import UserError
from aigen.pretrained import cached_build, location
from aigen.pretrained import load_error as pretrained_load_error

TINY_CLIP_ID = "aigen/clip-tiny-random"
TINY_CLIP_VERSION = "v1"
INIT_SEED = 0


def build_tiny_clip() -> tuple[CLIPModel, CLIPImageProcessor]:
    """A CLIP with openai/clip-vit-large-patch14's layout (text and vision towers, both projections) at 64 px."""
    torch.manual_seed(INIT_SEED)
    tower = {"hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4, "num_hidden_layers": 2}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": 99, "max_position_embeddings": 16, "projection_dim": 16, "eos_token_id": 2},
        vision_config={**tower, "image_size": 64, "patch_size": 16, "projection_dim": 16},
        projection_dim=16,
    )
    processor = CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    return CLIPModel(config), processor


def save_tiny_clip(folder: Path) -> None:
    model, processor = build_tiny_clip()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


@dataclass(frozen=True)
class ProbeConfig:
    """What the checkpoint keeps to rebuild the probe: the backbone's name and the head's and inputs' shapes."""

    backbone: str
    revision: str | None
    dim: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ProbeConfig:
        return cls(**{**values, "mean": tuple(values["mean"]), "std": tuple(values["std"])})

    @property
    def weights(self) -> str:
        return "random" if self.backbone == TINY_CLIP_ID else "pretrained"


class ClipProbe(torch.nn.Module):
    """The trained part: a linear layer from a CLIP image embedding to the two class logits."""

    def __init__(self, config: ProbeConfig) -> None:
        super().__init__()
        self.config = config
        self.head = torch.nn.Linear(config.dim, len(LABELS))

    def forward(self, features: torch.Tensor) -> ImageClassifierOutput:
        return ImageClassifierOutput(logits=self.head(features))

    def preprocess(self, resize: str) -> Preprocess:
        """CLIP's input side and normalisation, with the detector's crop or resize."""
        return Preprocess(self.config.image_size, self.config.mean, self.config.std, resize)


def backbone_location(backbone: str, cache_dir: str) -> str:
    """What `from_pretrained` loads: the tiny twin's cache folder, a local folder, or the hub id."""
    if backbone == TINY_CLIP_ID:
        return str(cached_build(cache_dir, f"clip-tiny-random-{TINY_CLIP_VERSION}", save_tiny_clip))
    return location(backbone)


def load_error(backbone: str, revision: str | None, error: Exception) -> UserError:
    return pretrained_load_error("CLIP model", backbone, revision, error, "model.backbone")


def build_clip_probe(backbone: str, revision: str | None, cache_dir: str) -> ClipProbe:
    """A new probe for `backbone`: reads its config and preprocessing (not its weights) to size the head."""
    location = backbone_location(backbone, cache_dir)
    transformers.utils.logging.set_verbosity_error()
    try:
        vision = CLIPVisionConfig.from_pretrained(location, revision=revision)
        processor = CLIPImageProcessor.from_pretrained(location, revision=revision)
    except (OSError, ValueError) as error:
        raise load_error(backbone, revision, error) from None
    config = ProbeConfig(
        backbone,
        revision,
        vision.projection_dim,
        vision.image_size,
        tuple(processor.image_mean),
        tuple(processor.image_std),
    )
    return ClipProbe(config)


def load_backbone(config: ProbeConfig, cache_dir: str, device: torch.device) -> CLIPVisionModelWithProjection:
    """The frozen image tower with its projection (the text tower of a full CLIP checkpoint is not loaded)."""
    transformers.utils.logging.set_verbosity_error()  # the unused text-tower weights of a full CLIP checkpoint
    try:
        model = CLIPVisionModelWithProjection.from_pretrained(
            backbone_location(config.backbone, cache_dir), revision=config.revision
        )
    except (OSError, ValueError) as error:
        raise load_error(config.backbone, config.revision, error) from None
    return model.eval().requires_grad_(False).to(device)
