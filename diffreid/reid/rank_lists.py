"""Rank-list pictures: a query and its top matches, true ones framed green, wrong red."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from diffreid.artifacts import atomic_path
from diffreid.data.records import Record

GREEN, RED, GREY = (0, 190, 0), (220, 0, 0), (40, 40, 40)


def _tile(path: Path, size: tuple[int, int], frame: tuple[int, int, int], border: int) -> Image.Image:
    height, width = size
    tile = Image.new("RGB", (width + 2 * border, height + 2 * border), frame)
    with Image.open(path) as image:
        tile.paste(image.convert("RGB").resize((width, height), Image.BILINEAR), (border, border))
    return tile


def save_rank_lists(distances, query: Sequence[Record], gallery: Sequence[Record], out_dir: Path,
                    num_queries: int, topk: int = 10, size: tuple[int, int] = (128, 64)) -> list[Path]:
    """Save one PNG per query for `num_queries` queries spread evenly over the query set.

    `distances`: the query x gallery matrix, or a source with `.rows(indices)` (see
    `feature_distances`), of which only the chosen queries' rows are computed. Gallery
    images of the query's own pid and camera are left out, as the Market-1501 protocol
    discards them before ranking.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = np.unique(np.linspace(0, len(query) - 1, num=min(num_queries, len(query))).round().astype(int))
    rows = distances.rows(chosen) if hasattr(distances, "rows") else np.asarray(distances)[chosen]
    g_pids = np.array([r.pid for r in gallery])
    g_cams = np.array([r.camid for r in gallery])
    border, gap = 3, 12
    saved = []
    for qi, row in zip(chosen, rows):
        q = query[qi]
        order = np.argsort(row, kind="stable")
        order = order[~((g_pids[order] == q.pid) & (g_cams[order] == q.camid))][:topk]
        tiles = [_tile(q.path, size, GREY, border)]
        tiles += [_tile(gallery[gi].path, size, GREEN if g_pids[gi] == q.pid else RED, border) for gi in order]
        tile_w, tile_h = tiles[0].size
        canvas = Image.new("RGB", (tile_w * len(tiles) + gap * len(tiles), tile_h + 16), "white")
        draw = ImageDraw.Draw(canvas)
        for i, tile in enumerate(tiles):
            x = i * (tile_w + gap) + (gap if i else 0)
            canvas.paste(tile, (x, 16))
            draw.text((x + 2, 2), "query" if i == 0 else str(i), fill=(0, 0, 0))
        path = out_dir / f"{qi:05d}_{Path(q.path).stem}.png"
        with atomic_path(path) as tmp:
            canvas.save(tmp, format="PNG")
        saved.append(path)
    return saved
