"""The detector network (a transformers ResNet with a 2-class head) and its checkpoints."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from hydra.utils import to_absolute_path
from transformers import ResNetConfig, ResNetForImageClassification

from aigen.detector.data import LABELS, Preprocess
from aigen.errors import UserError
from aigen.records import write_atomic

CHECKPOINT_FORMAT = "aigen-detector-v1"
ID2LABEL = {index: name for name, index in LABELS.items()}


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
            return ResNetForImageClassification.from_pretrained(
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
    config = ResNetConfig(
        layer_type=layer_type,
        depths=list(depths),
        hidden_sizes=list(hidden_sizes),
        embedding_size=embedding_size,
        num_labels=len(LABELS),
        id2label=ID2LABEL,
        label2id=LABELS,
    )
    return ResNetForImageClassification(config)


@dataclass
class Detector:
    """A trained model with what it needs to be used again: its preprocessing and the split it was trained on."""

    model: ResNetForImageClassification
    preprocess: Preprocess
    split: dict
    epoch: int


def checkpoint_payload(model: ResNetForImageClassification, preprocess: Preprocess, split: dict, epoch: int) -> dict:
    """What best.pt holds; last.pt adds the optimizer and loop state. The architecture travels with the weights."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_config": model.config.to_dict(),
        "model_state": model.state_dict(),
        "preprocess": {"image_size": preprocess.image_size, "mean": preprocess.mean, "std": preprocess.std},
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
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        raise UserError(f"checkpoint {path} cannot be read: {type(error).__name__}: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not a detector checkpoint written by `python -m aigen.detect task=train`")
    return payload


def model_from_payload(payload: dict) -> ResNetForImageClassification:
    model = ResNetForImageClassification(ResNetConfig.from_dict(payload["model_config"]))
    model.load_state_dict(payload["model_state"])
    return model


def load_detector(path: Path) -> Detector:
    """Rebuild a trained detector from its checkpoint alone (no model group, no hub access)."""
    payload = read_checkpoint(path)
    preprocess = payload["preprocess"]
    return Detector(
        model=model_from_payload(payload),
        preprocess=Preprocess(preprocess["image_size"], tuple(preprocess["mean"]), tuple(preprocess["std"])),
        split=payload["split"],
        epoch=payload["epoch"],
    )
