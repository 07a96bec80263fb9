"""What a dataset card may say about the licences and citations of the photos and models: only what their owners
state. A source or model that is not in these tables is named as unknown, for the publisher to fill in."""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "unknown: fill in before publishing"


@dataclass(frozen=True)
class Terms:
    """One part of a dataset (its photos, or the model that made its AI half): licence in words, and BibTeX."""

    name: str
    license: str
    citation: str | None = None
    known: bool = True  # False: nobody states a licence, so the dataset's licence is unknown too


QUATTONI_2009 = """@inproceedings{quattoni2009indoor,
  title     = {Recognizing Indoor Scenes},
  author    = {Quattoni, Ariadna and Torralba, Antonio},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2009}
}"""

SCIKIT_IMAGE_2014 = """@article{vanderwalt2014scikit,
  title   = {scikit-image: image processing in {P}ython},
  author  = {van der Walt, St{\\'e}fan and Sch{\\"o}nberger, Johannes L. and Nunez-Iglesias, Juan and
             Boulogne, Fran{\\c{c}}ois and Warner, Joshua D. and Yager, Neil and Gouillart, Emmanuelle and
             Yu, Tony and {the scikit-image contributors}},
  journal = {PeerJ},
  volume  = {2},
  pages   = {e453},
  year    = {2014}
}"""

LATENT_DIFFUSION_2022 = """@inproceedings{rombach2022high,
  title     = {High-Resolution Image Synthesis with Latent Diffusion Models},
  author    = {Rombach, Robin and Blattmann, Andreas and Lorenz, Dominik and Esser, Patrick and Ommer, Bj{\\"o}rn},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {10684--10695},
  year      = {2022}
}
@misc{lambdalabs2022sdimagevariations,
  title        = {Stable Diffusion Image Variations},
  author       = {{Lambda Labs}},
  howpublished = {\\url{https://huggingface.co/lambdalabs/sd-image-variations-diffusers}},
  year         = {2022}
}"""

DALLE2_2022 = """@article{ramesh2022hierarchical,
  title   = {Hierarchical Text-Conditional Image Generation with {CLIP} Latents},
  author  = {Ramesh, Aditya and Dhariwal, Prafulla and Nichol, Alex and Chu, Casey and Chen, Mark},
  journal = {arXiv preprint arXiv:2204.06125},
  year    = {2022}
}"""

OPENAI_TERMS = "OpenAI's terms of use for API outputs (https://openai.com/policies/terms-of-use)"
NO_MODEL = "n/a: no model (a control: the AI half is the photo itself)"

# By the source's identity in dataset.json (not its name: a user's folder may be called anything).
SOURCES = {
    "MIT Indoor67": Terms(
        "MIT Indoor67",
        "unknown / see the dataset's terms (Quattoni and Torralba, CVPR 2009)",
        QUATTONI_2009,
        known=False,
    ),
    "package skimage.data": Terms(
        "scikit-image sample photos (skimage.data)",
        "per image, as stated in the notes of each skimage.data function (most: public domain or CC0)",
        SCIKIT_IMAGE_2014,
    ),
}

# By model id first (a local copy of a model is unknown: its path says nothing about its terms) ...
MODELS = {
    "lambdalabs/sd-image-variations-diffusers": Terms(
        "lambdalabs/sd-image-variations-diffusers", "creativeml-openrail-m", LATENT_DIFFUSION_2022
    ),
    "aigen/sd-tiny-random": Terms("aigen/sd-tiny-random", "n/a (random weights: no trained model)"),
}
# ... then by generator, for those whose model names change (the APIs) or that have none (the controls).
GENERATORS = {
    "dalle2": Terms("OpenAI DALL-E 2 (image variations API)", OPENAI_TERMS, DALLE2_2022),
    "gpt_image": Terms("OpenAI GPT Image (image edits API)", OPENAI_TERMS),
    "identity": Terms("identity control", NO_MODEL),
    "lossless_twin": Terms("lossless_twin control", NO_MODEL),
    "native_twin": Terms("native_twin control", NO_MODEL),
}


def source_terms(source: dict) -> Terms:
    """The terms of a dataset's photos, from dataset.json's `content.source` ({name, identity[, reading]})."""
    found = SOURCES.get(str(source.get("identity")))
    return found or Terms(f"{source.get('name')} ({source.get('identity')})", UNKNOWN, known=False)


def model_terms(content: dict, configured: str | None = None) -> Terms:
    """The terms of the model that made a dataset's AI half, from dataset.json's `content`; `configured` is the
    licence its generator config states (`generator.license`), which wins over these tables (kept for the
    citations and for datasets recorded before configs named their licence)."""
    model, generator = str(content.get("model")), str(content.get("generator"))
    found = MODELS.get(model) or GENERATORS.get(generator)
    if configured:
        return Terms(found.name if found else f"{generator}: {model}", configured, found.citation if found else None)
    return found or Terms(f"{generator}: {model}", UNKNOWN, known=False)


def dataset_model_terms(record: dict) -> Terms:
    """model_terms of a dataset dir, from its dataset.json: the content, and the licence its generator config named."""
    return model_terms(record.get("content", {}), record.get("config", {}).get("generator", {}).get("license"))


def hub_license(parts: list[Terms]) -> str:
    """The card's `license:` field: `unknown` when any part's licence is, else `other` (photos and model outputs
    under different terms, spelled out in the card)."""
    return "other" if all(part.known for part in parts) else "unknown"
