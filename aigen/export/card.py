"""The export's README.md: a Hugging Face dataset card whose YAML tells `datasets` and the Hub where each split's
shards are and what the columns are, and whose text says how the pairs were made, what is in them, how biased
their processing measured, under which terms, and whom to cite."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import yaml

from aigen.audit import CUES
from aigen.audit.report import FLAG_RULE
from aigen.dataset import HALVES, DatasetDir
from aigen.dataset.record import unfinished_note
from aigen.export.collect import SPLITS, Pair
from aigen.export.licenses import Terms, dataset_model_terms, hub_license, source_terms
from aigen.export.shards import parquet_features, split_pattern
from aigen.tables import markdown_table

SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))
COLUMN_NOTES = {
    "id": "the photo's id in its source (path with `/` as `_`, no extension); the same photo has the same id in "
    "every generator's rows",
    "original": "the real photo: the dataset dir's JPEG, byte for byte",
    "ai": "its AI variation: the dataset dir's JPEG, byte for byte",
    "split": "`train`, `validation` or `test`, by the source photo's content (see Splits)",
    "dataset": "the aigen dataset dir the pair comes from (one per generator configuration)",
    "category": "the photo's first folder in its source (e.g. the scene class), empty when none",
    "generator": "what made the AI half",
    "model": "the model id (or API model) of the generator",
    "alignment": "`pixel` or `semantic` where the generator records it, else null",
    "seed": "this image's generator seed; null for generators that take none",
    "source": "the photo's path in its source",
    "source_sha256": "SHA-256 of the source photo's file",
    "size": "side of both square JPEGs, in pixels",
}
BIBTEX_AIGEN = """@software{{aigen,
  title   = {{aigen: paired real photos and AI-generated variations for detector research}},
  version = {{{version}}},
  note    = {{git commit {commit}}}
}}"""


@dataclass(frozen=True)
class CardFacts:
    """Everything the card states, gathered by the export."""

    title: str
    dirs: list[DatasetDir]
    pairs: list[Pair]
    columns: dict[str, str]
    files: dict[str, list[str]]
    file_format: str
    seed: int
    fractions: dict[str, float]
    audits: dict[str, dict]  # audit.json by dataset dir name
    preview: str | None
    repo_id: str
    command: str


def size_category(count: int) -> str:
    return next((label for limit, label in SIZE_CATEGORIES if count < limit), "n>1M")


def features_yaml(facts: CardFacts) -> list[dict]:
    """The `dataset_info.features` list: fixed types, so that `datasets` does not guess a WebDataset's from its
    first few samples (where a column such as a control generator's `seed` may be null)."""
    if facts.file_format == "parquet":
        return [{"name": name, "dtype": dtype} for name, dtype in parquet_features(facts.columns).items()]
    fields = [{"name": name, "dtype": dtype} for name, dtype in facts.columns.items()]
    fields += [{"name": half, "dtype": "string"} for half in HALVES]
    return [
        *({"name": f"{half}.jpg", "dtype": "image"} for half in HALVES),
        {"name": "json", "struct": sorted(fields, key=lambda field: field["name"])},
        {"name": "__key__", "dtype": "string"},
        {"name": "__url__", "dtype": "string"},
    ]


def card_metadata(facts: CardFacts) -> dict:
    """The YAML header the Hub and `datasets.load_dataset(EXPORT_DIR)` read."""
    return {
        "pretty_name": facts.title,
        "license": hub_license(all_terms(facts.dirs)),
        "task_categories": ["image-classification"],
        "tags": ["ai-generated-image-detection", "synthetic-images", "paired", "aigen"],
        "size_categories": [size_category(len(facts.pairs))],
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": split, "path": split_pattern(split, facts.file_format)}
                    for split in SPLITS
                    if split in facts.files
                ],
            }
        ],
        "dataset_info": {"config_name": "default", "features": features_yaml(facts)},
    }


def all_terms(dirs: list[DatasetDir]) -> list[Terms]:
    """The photos' and every model's terms, each once."""
    parts = [source_terms(d.record.get("content", {}).get("source", {})) for d in dirs]
    parts += [dataset_model_terms(d.record) for d in dirs]
    return list(dict.fromkeys(parts))


def contents_section(facts: CardFacts) -> str:
    counts = Counter((pair.dataset.name, pair.split) for pair in facts.pairs)
    header = ["dataset", "generator", "model", *SPLITS, "pairs", "photos that failed (not included)"]
    rows = [
        [
            f"`{d.name}`",
            d.record["content"].get("generator"),
            d.record["content"].get("model"),
            *(counts[d.name, split] for split in SPLITS),
            len(d.rows),
            d.record.get("counts", {}).get("failed", 0),
        ]
        for d in facts.dirs
    ]
    totals = Counter(pair.split for pair in facts.pairs)
    rows.append(["**all**", "", "", *(totals[split] for split in SPLITS), len(facts.pairs), ""])
    random_weights = [d.name for d in facts.dirs if any(row.get("weights") == "random" for row in d.rows.values())]
    warning = (
        f"\n\n**Random weights**: the AI half of {', '.join(f'`{n}`' for n in random_weights)} comes from a randomly "
        "initialised model (noise-like images); it exercises the pipeline and is no benchmark."
        if random_weights
        else ""
    )
    unfinished = [(d.name, unfinished_note(d.record)) for d in facts.dirs]
    warning += "".join(f"\n\n**Not finished**: `{name}`: {note}." for name, note in unfinished if note)
    return "## Contents\n\n" + markdown_table(header, rows) + warning


def splits_section(facts: CardFacts) -> str:
    val, test = facts.fractions["val_fraction"], facts.fractions["test_fraction"]
    return (
        "## Splits\n\n"
        f"By the source photo's content (its SHA-256), seeded (seed {facts.seed}, val {val:g}, test {test:g}): "
        "exactly the split `python -m aigen.detect` uses with the same settings. A photo and its variation never "
        "straddle two splits, and the same photo is in the same split in every generator's rows. Splits without "
        "pairs are left out."
    )


def fields_section(facts: CardFacts) -> str:
    columns = parquet_features(facts.columns)
    note = "generation setting from the manifest"
    rows = [[f"`{name}`", dtype, COLUMN_NOTES.get(name, note)] for name, dtype in columns.items()]
    layout = (
        "One row per pair, in Parquet shards under `data/` (at most the shard size in image bytes each)."
        if facts.file_format == "parquet"
        else "WebDataset tar shards under `data/`: per pair `<key>.original.jpg`, `<key>.ai.jpg` and `<key>.json` "
        "(the manifest row with the columns below). The key is the id"
        + (", prefixed by `<dataset>/`." if len(facts.dirs) > 1 else ".")
    )
    return "## Fields\n\n" + layout + "\n\n" + markdown_table(["column", "type", "meaning"], rows)


def settings_section(facts: CardFacts) -> str:
    """Each dataset dir's fingerprinted content config (everything that decides its pixels) and its provenance."""
    blocks = []
    for d in facts.dirs:
        versions = d.record.get("versions", {})
        made = f"Made with aigen {versions.get('aigen')}, git commit `{d.record.get('git_commit')}`"
        settings = yaml.safe_dump({"fingerprint": d.record["fingerprint"], **d.record["content"]}, sort_keys=True)
        blocks.append(f"### `{d.name}`\n\n{made}.\n\n```yaml\n{settings}```")
    intro = (
        "Both halves of a pair are centre-cropped, resized and JPEG-encoded the same way; these settings decide "
        "every pixel (aigen fingerprints them in the dataset dir's `dataset.json`)."
    )
    return "## Generation settings\n\n" + intro + "\n\n" + "\n\n".join(blocks)


def audit_section(facts: CardFacts) -> str:
    """The bias table of `python -m aigen.audit`, one row per audited dataset dir."""
    if not facts.audits:
        return (
            "## Processing bias audit\n\nNot audited. Run `python -m aigen.audit DATASET_DIR` on each dataset dir and "
            "export again to add its table here."
        )
    header = ["dataset", "pairs audited", *(cue.more for cue in CUES), "cue classifier"]
    rows, flags = [], []
    for name, audit in facts.audits.items():
        cells = []
        for cue in CUES:
            result = audit["cues"][cue.name]
            cells.append(f"{result['share_ai_greater']:.0%}" + (" (flagged)" if result["flagged"] else ""))
        accuracy = audit["classifier"]["accuracy"]
        rows.append([f"`{name}`", audit["pairs"], *cells, "n/a" if accuracy is None else f"{accuracy:.0%}"])
        flags += [f"- `{name}`: {flag}" for flag in audit["flags"]]
    return (
        "## Processing bias audit\n\n"
        "`python -m aigen.audit`: each cell is the share of pairs where the AI half is as the column says. "
        f"{FLAG_RULE} On a control's pairs a flagged cue is processing a detector can learn instead of generation; "
        "on a generator's pairs it says only that the halves differ (the flags below say which). The classifier "
        "column is the held-out accuracy of a logistic regression on these global cues alone.\n\n"
        + markdown_table(header, rows)
        + "\n\n"
        + ("\n".join(flags) if flags else "No cue flagged.")
    )


def licenses_section(facts: CardFacts) -> str:
    rows = [[part.name, part.license] for part in all_terms(facts.dirs)]
    return (
        "## Licenses\n\n"
        "The photos keep their source's terms and the AI images their model's; the dataset's `license` field is "
        "`unknown` while any of them is.\n\n" + markdown_table(["part", "license"], rows)
    )


def citations_section(facts: CardFacts) -> str:
    parts = all_terms(facts.dirs)
    known = [part.citation for part in parts if part.citation]
    missing = [part.name for part in parts if not part.citation and not part.license.startswith("n/a")]
    versions = facts.dirs[0].record.get("versions", {})
    tool = BIBTEX_AIGEN.format(version=versions.get("aigen"), commit=facts.dirs[0].record.get("git_commit"))
    note = f"\n\nNo citation known for: {', '.join(missing)} (fill in before publishing)." if missing else ""
    return (
        "## Citation\n\nThe photos, the models and the tool that paired them:\n\n```bibtex\n"
        + "\n".join([*known, tool])
        + "\n```"
        + note
    )


def usage_section(facts: CardFacts) -> str:
    load = (
        f'dataset = load_dataset("{facts.repo_id}")  # or a local copy: load_dataset("path/to/this/folder")'
        if facts.file_format == "parquet"
        else f'dataset = load_dataset("{facts.repo_id}")  # WebDataset shards; or the webdataset library on data/*.tar'
    )
    return (
        "## Use\n\n```python\nfrom datasets import load_dataset\n\n"
        f"{load}\n"
        'pair = dataset["train"][0]\n```\n\n'
        "## Reproduce and publish\n\n"
        f"Exported from aigen dataset dirs with:\n\n```bash\n{facts.command}\n```\n\n"
        f"Published from this folder with:\n\n```bash\nhf upload {facts.repo_id} . . --repo-type dataset\n```"
    )


def dataset_card(facts: CardFacts) -> str:
    """The whole README.md."""
    front = yaml.safe_dump(card_metadata(facts), sort_keys=False, allow_unicode=True)
    intro = (
        f"# {facts.title}\n\n"
        "Pairs of a real photo and an AI-generated variation of it, made with aigen: both halves share size, crop "
        "and JPEG settings, so a real-vs-AI detector can only learn the difference that matters. The images are "
        "the dataset dirs' JPEG files, byte for byte (never re-encoded)."
    )
    preview = f"![original | AI pairs]({facts.preview})" if facts.preview else ""
    sections = [
        intro,
        preview,
        contents_section(facts),
        splits_section(facts),
        fields_section(facts),
        settings_section(facts),
        audit_section(facts),
        licenses_section(facts),
        citations_section(facts),
        usage_section(facts),
    ]
    return f"---\n{front}---\n\n" + "\n\n".join(section for section in sections if section) + "\n"
