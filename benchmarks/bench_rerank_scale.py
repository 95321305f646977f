"""Re-ranked evaluation from features at growing sizes, against the original re-ranking where it can run.

    python benchmarks/bench_rerank_scale.py [--sizes 4000 8000 19281 93820] [--original-up-to 19281]
                                            [--ivf] [--dim 512] [--noise 2.6]

Features and labels in MSMT17's test-split proportions (`common.msmt_like`; 93,820
images is MSMT17's 11,659 queries + 82,161 gallery images). Each side goes from the
features to the metrics, squared-Euclidean distances, k1=20, k2=6, lambda=0.3:
ours is `evaluate_features(..., rerank=True)` (faiss neighbour searches, sparse
encodings, re-ranked rows a block of queries at a time; `--ivf` adds a run with
approximate IVF searches); the original builds the three distance matrices, runs
fast-reid 1.4.0's `re_ranking` (see `peer.py`) and `evaluate_rank` on its result, at
the sizes up to `--original-up-to`. Every run is made once, in a fresh process that has
loaded the features: its time, its peak RSS growth and the process's whole peak.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path


import common
import peer
from diffreid.evaluation import evaluate_features, evaluate_rank
from diffreid.evaluation.distance import pairwise_distance

LABELS = ("q_pids", "g_pids", "q_camids", "g_camids")


def run_side(side: str, data: dict) -> dict:
    q, g, labels = data["q"], data["g"], [data[name] for name in LABELS]
    if side == "original":
        dist = [pairwise_distance(a, b, "euclidean") for a, b in ((q, g), (q, q), (g, g))]
        result = evaluate_rank(peer.re_ranking()(*dist), *labels)
    else:
        rerank = {"search": "ivf" if side == "ours-ivf" else "exact"}
        result = evaluate_features(q, g, *labels, metric="euclidean", rerank=rerank)
    return {"mAP": result["mAP"], "rank1": float(result["cmc"][0])}


def growth(sizes: list[int], values: list[float]) -> str:
    """Exponent e of value ~ size^e between consecutive sizes."""
    return ", ".join(f"{math.log(values[i + 1] / values[i]) / math.log(sizes[i + 1] / sizes[i]):.2f}"
                     for i in range(len(sizes) - 1) if values[i] > 0 and values[i + 1] > 0)


def main() -> None:
    parser = common.arguments(__doc__, noise=2.6, repeats=None, sized=False)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 8000, 19281, 93820], help="query + gallery")
    parser.add_argument("--original-up-to", type=int, default=19281, help="largest size the original runs at")
    parser.add_argument("--ivf", action="store_true", help="also run ours with approximate IVF searches")
    parser.add_argument("--dim", type=int, default=512, help="feature dimensions")
    args = parser.parse_args()
    if args.worker:
        return common.worker(*args.worker, run_side, prepare=peer.re_ranking)

    total = sum(common.MSMT17[k] for k in ("num_query", "num_gallery"))
    sides = ["ours"] + (["ours-ivf"] if args.ivf else []) + ["original"]
    table = {side: {} for side in sides}
    for size in args.sizes:
        q, g, *labels = common.msmt_like(size / total, args.dim, args.noise)
        plain = evaluate_features(q, g, *labels, metric="euclidean")["mAP"]
        print(f"{len(q)} queries + {len(g)} gallery = {len(q) + len(g)} images, {args.dim}-d, "
              f"mAP without re-ranking {plain:.4f}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            inputs = common.save_inputs(Path(tmp), {"q": q, "g": g, **dict(zip(LABELS, labels))})
            for side in sides:
                if side == "original" and size > args.original_up_to:
                    continue
                run = table[side][size] = common.fresh_run(__file__, side, inputs)
                print(f"  {side:9s} {run['seconds']:7.1f} s  peak +{run['peak_increase_mib']:6.0f} MiB "
                      f"(process {run['peak_mib']:6.0f} MiB)  mAP {run['result']['mAP']:.4f}", flush=True)
        if size in table["original"]:
            gap = 100 * abs(table["ours"][size]["result"]["mAP"] - table["original"][size]["result"]["mAP"])
            print(f"  mAP difference ours / original: {gap:.4f} points", flush=True)
    for side in sides:
        sizes = sorted(table[side])
        if len(sizes) > 1:
            print(f"{side}: time grows as size^({growth(sizes, [table[side][s]['seconds'] for s in sizes])}), "
                  f"peak memory as size^({growth(sizes, [table[side][s]['peak_increase_mib'] for s in sizes])})")
    print(json.dumps({side: {str(k): v for k, v in runs.items()} for side, runs in table.items()}))


if __name__ == "__main__":
    main()
