"""What a person looks at after a run: the gallery pairs (the same source photos in every run) and preview.png."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from aigen.errors import unreadable_as_user_error
from aigen.seeding import gallery_key

TILE = 128
LABEL_HEIGHT = 14
PAIRS_PER_ROW = 4


def gallery_rows(rows: dict[str, dict], count: int) -> list[dict]:
    """`count` manifest rows chosen by a hash of the id alone: runs of a sweep show the same photos."""
    chosen = sorted(rows, key=gallery_key)[:count]
    return [rows[image_id] for image_id in sorted(chosen)]


def contact_sheet(dataset_dir: Path, rows: list[dict]) -> Image.Image:
    """original | AI tiles, PAIRS_PER_ROW pairs a row, each pair labelled with its id."""
    columns = min(PAIRS_PER_ROW, len(rows)) or 1
    lines = -(-len(rows) // columns)
    sheet = Image.new("RGB", (columns * 2 * TILE, lines * (TILE + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, row in enumerate(rows):
        left, top = (index % columns) * 2 * TILE, (index // columns) * (TILE + LABEL_HEIGHT)
        for offset, key in enumerate(("original", "ai")):
            with unreadable_as_user_error(dataset_dir / row[key]), Image.open(dataset_dir / row[key]) as image:
                sheet.paste(image.convert("RGB").resize((TILE, TILE)), (left + offset * TILE, top))
        draw.text((left + 2, top + TILE + 1), f"{row['id'][:40]}  (original | ai)", fill="black")
    return sheet


def write_preview(dataset_dir: Path, rows: list[dict], run_dir: Path) -> Path | None:
    """preview.png in the run dir (never in the dataset dir, which must stay a clean imagefolder)."""
    if not rows:
        return None
    path = run_dir / "preview.png"
    run_dir.mkdir(parents=True, exist_ok=True)
    contact_sheet(dataset_dir, rows).save(path)
    return path
