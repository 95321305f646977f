"""The confidence threshold filter on real images: CUHK01 genuine candidates against impostors.

Runs `diffreid filter` on the protocol of `ctf_protocol.py` (identities 1-485
calibrate the threshold cross-camera; identities 486-971's camera-B images are genuine
candidates, or relabelled as a random and as the nearest other identity) for each score
the scorer supports, prints genuine kept / random dropped / look-alike dropped and the
ROC areas, and draws the ROC curves.

    python benchmarks/ctf_cuhk01.py [--model ../shared/data/models/osnet_x0_25_msmt17.onnx] \
        [--cuhk01 ../shared/data/cuhk01] [--work runs/ctf-cuhk01] [--figure docs/figures/ctf_roc_cuhk01.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ctf_protocol import measure, plot_roc

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(SHARED / "models" / "osnet_x0_25_msmt17.onnx"))
    parser.add_argument("--cuhk01", type=Path, default=SHARED / "cuhk01")
    parser.add_argument("--work", type=Path, default=Path("runs/ctf-cuhk01"))
    parser.add_argument("--scores", nargs="+", default=["cosine", "margin"])
    parser.add_argument("--percentile", type=float, default=5.0)
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/ctf_roc_cuhk01.png"))
    args = parser.parse_args()
    results = [measure(args.model, args.cuhk01, args.work, score, args.percentile) for score in args.scores]
    print(f"{'score':8} {'threshold':>9} {'genuine kept':>13} {'random dropped':>15} {'look-alike dropped':>19} "
          f"{'AUC random':>11} {'AUC look-alike':>15}")
    for r in results:
        print(f"{r['score']:8} {r['threshold']:9.4f} {r['genuine_kept']:13.1%} {r['random_dropped']:15.1%} "
              f"{r['lookalike_dropped']:19.1%} {r['auc']['random']:11.4f} {r['auc']['lookalike']:15.4f}")
    print(f"candidates per kind: {results[0]['candidates']}; threshold: {results[0]['method']}")
    plot_roc(results, args.figure)
    summary = [{k: v for k, v in r.items() if k != "roc"} for r in results]
    (args.work / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"ROC curves: {args.figure}")


if __name__ == "__main__":
    main()
