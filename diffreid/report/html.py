"""DIR/report.html of `diffreid run`: one self-contained page, readable offline.

Every picture is embedded as a data URI: per-identity grids (input sequence | generated
and kept | filtered out, with the reason), the filter's score histogram, the results
table and the training curves. Nothing on the page is fetched. The claim's comparisons
(the paper's first, then this project's extra controls) and the results are means ± 95%
intervals over seeds, each table with the size of the test sets beside it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from PIL import Image

from diffreid.artifacts import write_text_atomic
from diffreid.evaluation.intervals import percent
from diffreid.report.summary import size_text
from diffreid.run_spec import RunSpec

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
td.images img { height: 96px; margin: 1px; }
td.images img.dropped { outline: 2px solid #c33; }
figure { display: inline-block; margin: 0 1em 1em 0; }
figure img { max-width: 560px; }
.claim { font-size: 1.1em; padding: 0.5em 1em; background: #f3f3f3; }
"""


def write_report_html(spec: RunSpec, out: Path, report: dict) -> Path:
    body = [f"<h1>diffreid run: {html.escape(out.name)}</h1>",
            f"<p class='claim' id='claim'><b>The paper's claim here: {html.escape(report['claim']['answer'])}.</b> "
            f"{html.escape(report['claim']['text'])}</p>",
            "<h2>The claim's comparisons</h2>", _comparisons_table(report),
            "<h2>Results on the target</h2>", _results_table(report),
            "<h2>Stages</h2>", _stages_table(report), "<h2>Per-identity grids</h2>",
            _grids(out, int(spec.report.get("identities", 6)), int(spec.report.get("per_cell", 6))),
            "<h2>Filter</h2>", _figures(out / "diff-person", ("scores.png", "kept_per_identity.png")),
            "<h2>Training curves</h2>", _curves(out)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>diffreid report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
    path = out / "report.html"
    write_text_atomic(path, page)
    return path


def _comparisons_table(report: dict) -> str:
    rows = report["claim"].get("comparisons", [])
    if not rows:
        return "<p>No comparison measured yet.</p>"
    sizes = report.get("test_sets", {})
    lines = []
    for row in rows:
        role = "the paper's comparison" if row["role"] == "paper" else "this project's extra control"
        difference = ("-" if row["low"] is None else
                      f"{100 * row['difference']:+.1f} [{100 * row['low']:+.1f}, {100 * row['high']:+.1f}]")
        cells = [role, row["setting"], size_text(sizes.get(row["setting"])), f"{row['init']} vs {row['baseline']}",
                 percent(row["init_mean"], row["init_ci"]), percent(row["baseline_mean"], row["baseline_ci"]),
                 difference, str(len(row["seeds"])), row["verdict"]]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("", "setting", "test set", "comparison", "mAP", "baseline mAP",
                                            "difference, points [95% interval]", "seeds", "verdict"))
    return (f"<table id='comparisons'><tr>{head}</tr>{''.join(lines)}</table>"
            f"<p>{html.escape(report['claim'].get('interval', ''))}; a claim needs "
            f"{report['claim'].get('min_seeds')} seeds.</p>")


def _results_table(report: dict) -> str:
    results, cells_over_seeds = report["results"], report.get("over_seeds", {})
    if not results:
        return "<p>No downstream results yet.</p>"
    settings = list(dict.fromkeys(s for per_init in results.values() for s in per_init))
    head = "".join(f"<th>{html.escape(s)}<br>mAP / Rank-1</th>" for s in settings)
    rows = []
    for init, per_init in results.items():
        cells = []
        for s in settings:
            cell = cells_over_seeds.get(init, {}).get(s)
            if cell is not None:
                cells.append(f"<td>{percent(cell['mAP']['mean'], cell['mAP']['ci'])} / "
                             f"{percent(cell['rank1']['mean'], cell['rank1']['ci'])} ({cell['seeds']} seed"
                             f"{'s' * (cell['seeds'] != 1)})</td>")
            elif s in per_init:
                cells.append(f"<td>{per_init[s]['mAP']:.1%} / {per_init[s]['rank1']:.1%}</td>")
            else:
                cells.append("<td>-</td>")
        rows.append(f"<tr><th>{html.escape(init)}</th>{''.join(cells)}</tr>")
    sizes = report.get("test_sets", {})
    rows.append("<tr><th>test set</th>" + "".join(f"<td>{html.escape(size_text(sizes.get(s)))}</td>"
                                                  for s in settings) + "</tr>")
    return (f"<table id='results'><tr><th>init</th>{head}</tr>{''.join(rows)}</table>"
            "<p>mean ± 95% Student-t interval over seeds (one seed: no interval).</p>")


def _stages_table(report: dict) -> str:
    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{entry['seconds']:.0f} s</td></tr>"
                   for name, entry in report["stages"].items())
    counts = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                     for k, v in report["counts"].items())
    return f"<table id='stages'><tr><th>stage</th><th>time</th></tr>{rows}</table><table>{counts}</table>"


def _grids(out: Path, identities: int, per_cell: int) -> str:
    from diffreid.data import load_dataset

    units = sorted((out / "diff-person" / ".units").glob("[0-9]*.json"), key=lambda p: int(p.stem))[:identities]
    if not units:
        return "<p>No filtered identities yet.</p>"
    datasets: dict[str, list] = {}
    rows = []
    for path in units:
        unit = json.loads(path.read_text(encoding="utf-8"))
        if unit["source"] not in datasets:
            datasets[unit["source"]] = load_dataset(unit["source"]).split("train")
        real = [r.path for r in datasets[unit["source"]] if r.pid == unit["source_pid"]][:per_cell]
        kept = [e for e in unit["entries"] if e["reason"] == "kept"][:per_cell]
        dropped = [e for e in unit["entries"] if e["reason"] != "kept"][:per_cell]
        cells = [_images(real), _images([e["generated"] for e in kept]),
                 _images([e["generated"] for e in dropped], [e["reason"] for e in dropped])]
        rows.append(f"<tr><th>{html.escape(unit['source'].split(':')[0])} {unit['source_pid']}</th>"
                    + "".join(f"<td class='images'>{c}</td>" for c in cells) + "</tr>")
    return ("<table id='grids'><tr><th>identity</th><th>input sequence</th><th>generated, kept</th>"
            f"<th>filtered out</th></tr>{''.join(rows)}</table>")


def _images(paths: list, titles: list[str] | None = None) -> str:
    tags = []
    for i, path in enumerate(paths):
        uri = _thumbnail(Path(path))
        if uri:
            title = f" title='{html.escape(titles[i])}' class='dropped'" if titles else ""
            tags.append(f"<img src='{uri}'{title} alt='person'>")
    return "".join(tags) or "-"


def _thumbnail(path: Path, height: int = 128) -> str | None:
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image = image.resize((max(1, round(image.width * height / image.height)), height))
    except OSError:
        return None
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figures(folder: Path, names: tuple[str, ...]) -> str:
    found = [folder / name for name in names if (folder / name).is_file()]
    return "".join(f"<figure><img src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}' "
                   f"alt='{html.escape(p.name)}'><figcaption>{html.escape(str(p.relative_to(folder.parent)))}"
                   "</figcaption></figure>" for p in found) or "<p>-</p>"


def _curves(out: Path) -> str:
    plots = sorted(out.glob("pretrain/*/curves.png")) + sorted(out.glob("sources/*/generator/loss.png"))
    return "".join(_figures(p.parent, (p.name,)) for p in plots) or "<p>-</p>"
