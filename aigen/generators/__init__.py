"""Generators turn a batch of square photos into variations: `base` (what the factory drives), `diffusers_base`
(what every open model shares) with `sd`, the `zoo` (vae, img2img, inpaint, unclip, kandinsky) and `flux` (flux_fill,
flux_kontext, flux_redux, flux2_klein) and their `tiny` random-weight twins, the paid image APIs (`paid_api`: cost,
key, retries) of OpenAI (`openai_images`) and Gemini (`gemini`), and the `controls` that generate nothing."""

import logging

# With torchao installed (generator.quantize), importing diffusers imports it, and it logs that its CUDA-only
# kernels do not load on a CPU build of torch, that some torch enums need no registration, and that diffusers cannot
# import tensors only serialized torchao checkpoints use (aigen quantizes while loading): nothing a run can act on.
for _logger in ("torchao", "torch.utils._pytree", "diffusers.quantizers.torchao.torchao_quantizer"):
    logging.getLogger(_logger).setLevel(logging.ERROR)
