"""Qwen-Image-Edit's processor without video (aigen.generators.modern's `qwen_edit`, its tiny twin and the GPU
benchmark): its own module, so that transformers is imported only when the model loads."""

from __future__ import annotations

from transformers import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin


class ImageOnlyQwenProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor for images and text only. The edit pipeline never gives it videos, and the video
    processor needs torchvision (absent beside the CPU torch), so it is not loaded."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs) -> None:
        self.image_token = "<|image_pad|>"
        self.video_token = "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)
