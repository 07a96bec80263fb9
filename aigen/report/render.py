"""index.html from the templates in site/: the dataset cards, the pair browser's embedded index, the audits' tables
and plots and the detector outputs' tables and plots, all as escaped HTML; the plots are copied into the site."""

from __future__ import annotations

import json
import shutil
import time
from html import escape
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from string import Template
from urllib.parse import quote

from aigen.audit import CUES
from aigen.audit.report import CONTROL_NOTE, FLAG_RULE, GENERATOR_NOTE
from aigen.dataset.record import unfinished_note
from aigen.report.collect import DatasetFacts, DetectorOutput

TEMPLATES = files("aigen.report") / "site"
ASSETS = ("style.css", "report.js")
MATRIX_KEYS = ("train", "eval", "n", "pairs", "seen")  # matrix.csv columns that are no metric


def table(header: list[str], rows: list[list[str]], css: str = "", row_css: list[str] | None = None) -> str:
    """An HTML table of cells that are already HTML (escape them first); no header row when `header` is empty."""
    head = "<thead><tr>" + "".join(f"<th>{escape(name)}</th>" for name in header) + "</tr></thead>" if header else ""
    body = "".join(
        (f'<tr class="{row_css[index]}">' if row_css and row_css[index] else "<tr>")
        + "".join(f"<td>{cell}</td>" for cell in row)
        + "</tr>"
        for index, row in enumerate(rows)
    )
    return f'<table class="{css}">{head}<tbody>{body}</tbody></table>'


def flattened(settings: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested settings as (dotted key, value) pairs."""
    items: list[tuple[str, object]] = []
    for key, value in sorted(settings.items()):
        if isinstance(value, dict):
            items += flattened(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def text(value: object) -> str:
    """A setting's value as its config spells it (null, true, lists as JSON)."""
    return escape(value if isinstance(value, str) else json.dumps(value))


def dataset_card(fact: DatasetFacts) -> str:
    """The card: what made the pairs, the settings that decide their pixels, counts, skips and licences."""
    dataset, content, record = fact.dataset, fact.content, fact.dataset.record
    generators = sorted({str(row.get("generator")) for row in dataset.rows.values()})
    alignments = sorted({str(row.get("alignment")) for row in dataset.rows.values() if row.get("alignment")})
    badges = "".join(f'<span class="badge">{escape(value)}</span>' for value in [*generators, *alignments])
    source, versions = content.get("source", {}), record.get("versions")
    facts = [
        ("generator", ", ".join(generators)),
        ("model", f"{content.get('model', '')} {content.get('revision') or ''}".strip()),
        ("photos", f"{source.get('name', '')} ({source.get('identity', '')})" if source else ""),
        ("size", f"{content['size']} px" if "size" in content else ""),
        ("pairs", f"{fact.counts['pairs']:,}"),
        ("not finished", unfinished_note(record) or ""),
        ("skipped photos", f"{fact.counts['failed']:,} (no pair now; listed in failures*.jsonl)"),
        ("licence of the photos", fact.photos.license),
        ("licence of the AI images", fact.model.license),
        ("fingerprint", record.get("fingerprint", "")),
        ("created", record.get("created", "")),
        ("made with", f"aigen {versions.get('aigen')}, git commit {record.get('git_commit')}" if versions else ""),
    ]
    facts_table = table([], [[escape(key), escape(str(value))] for key, value in facts if value], "facts")
    reasons = fact.counts["failure_reasons"]
    skips = (
        table(["stage: reason", "photos"], [[escape(reason), str(count)] for reason, count in reasons.items()])
        if reasons
        else '<p class="note">No photo was skipped.</p>'
    )
    settings = flattened(content)
    settings_table = (
        table(["setting", "value"], [[escape(key), text(value)] for key, value in settings], "settings")
        if settings
        else '<p class="note">No fingerprinted settings in dataset.json (a dir made by hand).</p>'
    )
    warning = (
        '<p class="warning">Random weights: the AI halves come from a randomly initialised model (noise-like '
        "images); they exercise the pipeline and are no benchmark.</p>"
        if fact.random_weights
        else ""
    )
    name = escape(dataset.name)
    links = f'<a href="#pairs?dataset={escape(quote(dataset.name))}">browse its {len(dataset.rows):,} pairs</a>'
    if fact.audit_dir:
        links += f' &middot; <a href="#audit-{escape(quote(dataset.name))}">its audit</a>'
    return (
        f'<article class="card" id="dataset-{name}"><div class="card-head"><h3>{name}</h3>{badges}</div>{warning}'
        f'<div class="card-body"><div><h4>Counts, provenance and licences</h4>{facts_table}'
        f"<h4>Skips</h4>{skips}<p>{links}</p></div>"
        f"<div><h4>Settings that decide the pixels</h4>{settings_table}</div></div></article>"
    )


def copy_into(path: Path, site: Path, folder: str) -> str:
    """Copy one file into site/folder; its URL from index.html (quoted: a `#` or `?` in a dataset's name would end
    the path)."""
    (site / folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, site / folder / path.name)
    return escape(quote(f"{folder}/{path.name}"))


def audit_block(fact: DatasetFacts, site: Path) -> str:
    """The audit's cue table, its classifier and flags, and its plot (audit.png), as python -m aigen.audit wrote."""
    audit, folder = fact.audit, f"audit/{fact.dataset.name}"
    rows, css = [], []
    for cue in CUES:
        result = audit["cues"][cue.name]
        rows.append(
            [
                escape(cue.label),
                f"{result['share_ai_greater']:.0%}",
                escape(result["direction"]),
                f"{result['direction_share']:.0%}",
                f"{result['median_difference']:.3g}",
                "flagged" if result["flagged"] else "",
            ]
        )
        css.append("flagged" if result["flagged"] else "")
    header = ["cue", "AI > original", "the AI half is", "in pairs", "median difference", "flag"]
    accuracy = audit["classifier"]["accuracy"]
    classifier = "n/a (too few pairs)" if accuracy is None else f"{accuracy:.0%}"
    flags = "".join(f"<li>{escape(flag)}</li>" for flag in audit["flags"]) or "<li>none</li>"
    links = " &middot; ".join(
        f'<a href="{copy_into(fact.audit_dir / name, site, folder)}">{name}</a>'
        for name in ("audit.md", "audit.csv", "audit.json")
        if (fact.audit_dir / name).is_file()
    )
    plot = (
        f'<div class="plots"><figure><figcaption>per-pair differences, one histogram per cue</figcaption>'
        f'<img src="{copy_into(fact.audit_dir / "audit.png", site, folder)}" alt="audit plots"></figure></div>'
        if (fact.audit_dir / "audit.png").is_file()
        else ""
    )
    note = CONTROL_NOTE if audit.get("control", True) else GENERATOR_NOTE
    return (
        f'<article class="card" id="audit-{escape(fact.dataset.name)}"><div class="card-head"><h3>'
        f'{escape(fact.dataset.name)}</h3><span class="badge">{audit["pairs"]:,} pairs</span></div>'
        f'<p class="note">Share of pairs where the AI half has more of each cue. {escape(FLAG_RULE)} '
        f"{escape(note)}</p>"
        + table(header, rows, row_css=css)
        + f"<p>Cue classifier, held-out accuracy: <strong>{classifier}</strong>. Flags:</p><ul>{flags}</ul>"
        + plot
        + (f"<p>{links}</p>" if links else "")
        + "</article>"
    )


def audits_section(facts: list[DatasetFacts], site: Path) -> str:
    blocks = [audit_block(fact, site) for fact in facts if fact.audit_dir]
    missing = [fact.dataset.name for fact in facts if not fact.audit_dir]
    if missing:
        names = ", ".join(f"<code>{escape(name)}</code>" for name in missing)
        blocks.append(
            f'<p class="note">Not audited: {names}. Run <code>python -m aigen.audit DATASET_DIR</code> and build the '
            "report again (it finds <code>./outputs/audit-&lt;name&gt;</code>, or pass <code>--audit DIR</code>).</p>"
        )
    return "".join(blocks) or '<p class="note">No dataset dirs given.</p>'


def shade(value: str) -> str:
    """A cell's style: blue as deep as the metric (0..1), white text on the dark half."""
    try:
        share = min(max(float(value), 0.0), 1.0)
    except ValueError:
        return ""
    ink = "#fff" if share > 0.5 else "#1d2330"
    return f' style="background: rgba(31, 95, 191, {0.08 + 0.8 * share:.2f}); color: {ink}"'


def matrix_grids(cells: list[dict]) -> str:
    """One grid per metric of matrix.csv: rows trained on, columns evaluated on."""
    rows = list(dict.fromkeys(cell["train"] for cell in cells))
    columns = list(dict.fromkeys(cell["eval"] for cell in cells))
    value = {(cell["train"], cell["eval"]): cell for cell in cells}
    grids = []
    for metric in [key for key in cells[0] if key not in MATRIX_KEYS]:
        head = "".join(f"<th>{escape(column)}</th>" for column in columns)
        body = "".join(
            f"<tr><th>{escape(row)}</th>"
            + "".join(
                f'<td class="cell"{shade(value[row, column][metric])}>{escape(value[row, column][metric])}</td>'
                if (row, column) in value
                else '<td class="cell"></td>'
                for column in columns
            )
            + "</tr>"
            for row in rows
        )
        grids.append(
            f"<div><h4>{escape(metric)}</h4><table><thead><tr><th>trained on \\ evaluated on</th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>"
        )
    return f'<div class="grids">{"".join(grids)}</div>'


DETECTOR_FILES = ("matrix.md", "matrix.csv", "results.md", "results.csv", "scores.csv")


def plot_caption(plot: Path) -> str:
    if plot.name == "matrix.png":
        return "the matrix heatmaps: rows trained on, columns evaluated on (test pairs)"
    if plot.name == "robustness.png":
        return "accuracy against perturbation strength, a line per dataset"
    return f"confusion matrix of {plot.stem.removeprefix('confusion_')}, clean test pairs"


def detector_block(output: DetectorOutput, number: int, site: Path) -> str:
    """A matrix's grids and heatmaps, an evaluation's table, robustness curves and confusion matrices."""
    folder = f"detector/{number}"
    parts = [f'<div class="detector-output"><h3>{escape(output.path.name)}</h3>']
    if output.matrix:
        parts.append("<h4>Cross-generator matrix</h4>" + matrix_grids(output.matrix))
    if output.results:
        header = list(output.results[0])
        rows = [[escape(row[key]) for key in header] for row in output.results]
        parts.append("<h4>Evaluation</h4>" + table(header, rows))
    for kind in ("matrix.png", "robustness.png", "confusion_"):
        figures = [
            f"<figure><figcaption>{escape(plot_caption(plot))}</figcaption>"
            f'<img src="{copy_into(plot, site, folder)}" alt="{escape(plot.stem)}"></figure>'
            for plot in output.plots
            if plot.name.startswith(kind)
        ]
        if figures:
            parts.append(f'<div class="plots">{"".join(figures)}</div>')
    links = " &middot; ".join(
        f'<a href="{copy_into(output.path / name, site, folder)}">{name}</a>'
        for name in DETECTOR_FILES
        if (output.path / name).is_file()
    )
    parts.append(f"<p>{links}</p></div>")
    return "".join(parts)


def detectors_section(outputs: list[DetectorOutput], site: Path) -> str:
    if not outputs:
        return (
            '<p class="note">No detector outputs given: pass <code>--detector DIR</code>, an output folder of '
            "<code>python -m aigen.detect task=matrix</code> or <code>task=eval</code>.</p>"
        )
    return "".join(detector_block(output, number, site) for number, output in enumerate(outputs, start=1))


def embedded_json(data: dict) -> str:
    """JSON safe inside a <script> element (no `</script>` can end it early)."""
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def write_site(
    site: Path, title: str, facts: list[DatasetFacts], pair_index: dict, outputs: list[DetectorOutput]
) -> None:
    """index.html, style.css and report.js, and the plots, into `site`."""
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("datasets", "Datasets"),
            ("pairs", "Pairs"),
            ("audit", "Audit"),
            ("detector", "Detectors"),
        )
    )
    page = Template((TEMPLATES / "index.html").read_text(encoding="utf-8")).substitute(
        title=escape(title),
        version=escape(version("aigen")),
        created=time.strftime("%Y-%m-%d %H:%M %Z"),
        nav=nav,
        datasets="".join(dataset_card(fact) for fact in facts) or '<p class="note">No dataset dirs given.</p>',
        pairs_hidden="" if pair_index["pairs"] else "hidden",
        pairs_index=embedded_json(pair_index),
        audits=audits_section(facts, site),
        detectors=detectors_section(outputs, site),
    )
    (site / "index.html").write_text(page, encoding="utf-8")
    for asset in ASSETS:
        (site / asset).write_text((TEMPLATES / asset).read_text(encoding="utf-8"), encoding="utf-8")
