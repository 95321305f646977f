"""evaluate_features against building the matrix + fast-reid's Cython evaluator, at MSMT17's shape.

    python benchmarks/bench_scale.py [--scale 1.0] [--dim 512] [--noise 1.9] [--metric cosine] [--repeats 1]

Synthetic features and labels shaped like MSMT17's test split (11,659 queries, 82,161
gallery images, 3,060 identities, 15 cameras; `--scale` shrinks every count for a
quick run). Each side runs from the features to the metrics, the distances included:
ours is `evaluate_features` (blocks of queries, the matrix never exists); the peer
builds the float32 matrix (`pairwise_distance`, one matrix product) and runs
fast-reid 1.4.0's `evaluate_cy` on it (built from its PyPI sdist by `peer.py`). Each
run is made in a fresh process that has loaded the features, so that its time and its
peak memory (RSS growth over the run, and the whole process's peak) are its own; the
sides alternate, `--repeats` times, and the best time of each counts.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import common
import peer
from diffreid.evaluation import evaluate_features
from diffreid.evaluation.distance import pairwise_distance

LABELS = ("q_pids", "g_pids", "q_camids", "g_camids")


def run_side(side: str, data: dict, metric: str) -> dict:
    labels = [data[name] for name in LABELS]
    if side == "peer":
        distmat = pairwise_distance(data["q"], data["g"], metric)
        cmc, all_ap, all_inp = peer.rank_cy().evaluate_cy(distmat, *labels, 50)
        return {"cmc": np.asarray(cmc).tolist(), "mAP": float(np.mean(all_ap)), "mINP": float(np.mean(all_inp))}
    result = evaluate_features(data["q"], data["g"], *labels, metric=metric, max_rank=50)
    return {"cmc": result["cmc"].tolist(), "mAP": result["mAP"], "mINP": result["mINP"]}


def main() -> None:
    parser = common.arguments(__doc__, noise=1.9, repeats=1, sized=False)
    parser.add_argument("--scale", type=float, default=1.0, help="every count of MSMT17's test split times this")
    parser.add_argument("--dim", type=int, default=512, help="feature dimensions")
    parser.add_argument("--metric", choices=("cosine", "euclidean"), default="cosine")
    args = parser.parse_args()
    if args.worker:
        side, inputs = args.worker
        metric = Path(inputs, "metric").read_text()
        return common.worker(side, inputs, lambda s, d: run_side(s, d, metric), prepare=peer.rank_cy)

    q, g, *labels = common.msmt_like(args.scale, args.dim, args.noise)
    data = {"q": q, "g": g, **dict(zip(LABELS, labels))}
    peer.rank_cy()  # built (once) before anything is timed
    features_mib = (q.nbytes + g.nbytes) / 2**20
    print(f"{len(q)} queries x {len(g)} gallery images, {len(np.unique(labels[0]))} identities, "
          f"{args.dim}-d float32 features ({features_mib:.0f} MiB), {args.metric} distance")
    runs = {"ours": [], "peer": []}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = common.save_inputs(Path(tmp), data)
        Path(tmp, "metric").write_text(args.metric)
        for _ in range(args.repeats):
            for side in runs:
                runs[side].append(common.fresh_run(__file__, side, inputs))
                print(f"  {side}: {runs[side][-1]['seconds']:.1f} s", flush=True)
    best = {side: min(runs[side], key=lambda r: r["seconds"]) for side in runs}
    ours, theirs = best["ours"]["result"], best["peer"]["result"]
    gaps = {"cmc": float(np.abs(np.subtract(ours["cmc"], theirs["cmc"])).max()),
            "mAP": abs(ours["mAP"] - theirs["mAP"]), "mINP": abs(ours["mINP"] - theirs["mINP"])}
    print(f"ours: mAP {ours['mAP']:.6f}  mINP {ours['mINP']:.6f}  rank-1 {ours['cmc'][0]:.6f}")
    print(f"peer: mAP {theirs['mAP']:.6f}  mINP {theirs['mINP']:.6f}  rank-1 {theirs['cmc'][0]:.6f}")
    print("largest difference: " + ", ".join(f"{k} {v:.1e}" for k, v in gaps.items()))
    for side, label in (("ours", "diffreid evaluate_features"), ("peer", "matrix + fast-reid evaluate_cy")):
        r = best[side]
        print(f"{label:31s} {r['seconds']:7.1f} s, peak memory +{r['peak_increase_mib']:.0f} MiB over the loaded "
              f"features (process peak {r['peak_mib']:.0f} MiB)")
    print(f"speedup: {best['peer']['seconds'] / best['ours']['seconds']:.1f}x   memory ratio (peer/ours): "
          f"{best['peer']['peak_increase_mib'] / max(best['ours']['peak_increase_mib'], 1e-9):.1f}x")
    if max(gaps.values()) > 1e-4:  # float32 distances of 82,161 items tie often; tie order differs
        sys.exit("results differ by more than 1e-4")


if __name__ == "__main__":
    main()
