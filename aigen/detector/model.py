"""The detector networks (a transformers ResNet with a 2-class head, or a linear probe on CLIP or DINOv2 features) and
their checkpoints."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import torch
import transformers  # a lazy module: the ResNet classes are imported when a model is built
from hydra.utils import to_absolute_path

from aigen.detector.data import LABELS, Preprocess
from aigen.detector.probe import BACKBONES, FeatureProbe, ProbeConfig
from aigen.errors import UserError
from aigen.files import write_atomic

if TYPE_CHECKING:
    from transformers import ResNetForImageClassification

CHECKPOINT_FORMAT = "aigen-detector-v2"  # v2: content-keyed train/val/test split, crop preprocessing, CLIP probes
ID2LABEL = {index: name for name, index in LABELS.items()}
RESNET = "resnet"  # the architecture names in a checkpoint
PROBES = tuple(f"{family}_probe" for family in BACKBONES)
Model: TypeAlias = "ResNetForImageClassification | FeatureProbe"


def build_resnet(
    layer_type: str,
    depths: list[int],
    hidden_sizes: list[int],
    embedding_size: int = 64,
    pretrained: str | None = None,
) -> ResNetForImageClassification:
    """A ResNet from its shape (random init), or `from_pretrained` of a hub id or folder with a new 2-class head.

    With `pretrained`, the architecture comes from the pretrained config and the shape arguments are unused.
    """
    if pretrained:
        folder = Path(to_absolute_path(str(Path(pretrained).expanduser())))
        if not folder.is_dir() and pretrained.startswith(("/", ".", "~")):
            raise UserError(f"model.pretrained={pretrained!r}: folder {folder} does not exist")
        transformers.utils.logging.set_verbosity_error()  # the expected "newly initialized classifier" notice
        try:
            return transformers.ResNetForImageClassification.from_pretrained(
                str(folder) if folder.is_dir() else pretrained,
                num_labels=len(LABELS),
                id2label=ID2LABEL,
                label2id=LABELS,
                ignore_mismatched_sizes=True,
            )
        except OSError as error:
            raise UserError(
                f"cannot load model.pretrained={pretrained!r}: {str(error).splitlines()[0]} -- it must be a folder "
                "saved with save_pretrained or a hub id; with no network (HF_HUB_OFFLINE=1) a hub id must already "
                f"be in the Hugging Face cache (`hf download {pretrained}` once)"
            ) from None
    config = transformers.ResNetConfig(
        layer_type=layer_type,
        depths=list(depths),
        hidden_sizes=list(hidden_sizes),
        embedding_size=embedding_size,
        num_labels=len(LABELS),
        id2label=ID2LABEL,
        label2id=LABELS,
    )
    return transformers.ResNetForImageClassification(config)


def model_preprocess(model: Model, image_size: int, resize: str) -> Preprocess:
    """A ResNet reads `image_size` squares with ImageNet statistics; a probe its backbone's side and statistics."""
    return model.preprocess(resize) if isinstance(model, FeatureProbe) else Preprocess(image_size, resize=resize)


@dataclass
class Detector:
    """A trained model with what it needs to be used again: its preprocessing and the split it was trained on."""

    model: Model
    preprocess: Preprocess
    split: dict
    epoch: int


def architecture(model: Model) -> str:
    return f"{model.config.family}_probe" if isinstance(model, FeatureProbe) else RESNET


def checkpoint_payload(model: Model, preprocess: Preprocess, split: dict, epoch: int) -> dict:
    """What best.pt holds; last.pt adds the optimizer and loop state. The architecture travels with the weights
    (for a probe: the head, and the backbone's name)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "architecture": architecture(model),
        "model_config": model.config.to_dict(),
        "model_state": model.state_dict(),
        "preprocess": asdict(preprocess),
        "labels": LABELS,
        "split": split,
        "epoch": epoch,
    }


def save_checkpoint(path: Path, payload: dict) -> None:
    """Atomic: a crash while saving leaves the previous checkpoint whole."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist (train one with `python -m aigen.detect task=train ...`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:  # the file itself: permissions, a disk error
        raise UserError(f"checkpoint {path} cannot be read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001 - any file torch cannot load gets the same one-line answer
        # torch's weights-only refusal is paragraphs of advice (load it unsafely) before the reason it ends with
        reason = [type(error).__name__, *str(error).rpartition("WeightsUnpickler error:")[2].strip().splitlines()[:1]]
        raise UserError(f"{path} is not an aigen detector checkpoint ({': '.join(reason)})") from None
    if not isinstance(payload, dict) or not str(payload.get("format", "")).startswith("aigen-detector-"):
        raise UserError(f"{path} is not a detector checkpoint written by `python -m aigen.detect task=train`")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise UserError(
            f"{path} was written by an older aigen ({payload['format']}, split by path id, no test split): "
            "train again to evaluate it honestly"
        )
    if payload["labels"] != LABELS:
        raise UserError(f"{path} uses the labels {payload['labels']}, aigen's detectors use {LABELS} (AI = 1)")
    return payload


def model_from_payload(payload: dict) -> Model:
    name, config = payload["architecture"], payload["model_config"]
    if name == RESNET:
        model = transformers.ResNetForImageClassification(transformers.ResNetConfig.from_dict(config))
    elif name in PROBES:
        model = FeatureProbe(ProbeConfig.from_dict(config))
    else:
        raise UserError(f"the checkpoint's architecture {name!r} is not one of {RESNET}, {', '.join(PROBES)}")
    model.load_state_dict(payload["model_state"])
    return model


def load_detector(path: Path) -> Detector:
    """Rebuild a trained detector from its checkpoint alone (no model group, no hub access)."""
    payload = read_checkpoint(path)
    preprocess = payload["preprocess"]
    return Detector(
        model=model_from_payload(payload),
        preprocess=Preprocess(**preprocess | {"mean": tuple(preprocess["mean"]), "std": tuple(preprocess["std"])}),
        split=payload["split"],
        epoch=payload["epoch"],
    )
