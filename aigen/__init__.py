"""aigen: paired datasets of real photos and AI-generated variations, for real-vs-AI image detectors."""

import logging
import os
import warnings

# Third-party import noise that no user can act on, silenced before any of it is imported (errors still show):
# - transformers warns that torchvision is missing (the CPU torch here has none) and falls back to Pillow image
#   processors, the same pixels;
# - with torchao installed (generator.quantize), importing diffusers or transformers imports it, and it logs that
#   its CUDA-only kernels do not load on a CPU build of torch, that some torch enums need no registration, and that
#   serialized torchao tensors cannot be imported (aigen quantizes while loading instead);
# - diffusers passes huggingface_hub a `local_dir_use_symlinks` argument that it now ignores, and it says so before
#   every download (and before the one-line error of a model missing offline).
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
for _logger in ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="The `local_dir_use_symlinks` argument is deprecated", category=UserWarning)
