"""aigen: paired datasets of real photos and AI-generated variations, for real-vs-AI image detectors."""

import os

# transformers warns on every import that torchvision is missing (the CPU torch here has none) and falls back to
# Pillow image processors, the same pixels: nothing a user can act on. Its errors still show.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
