"""evaluate_rank against fast-reid's Cython evaluator at Market-1501 scale: time, memory, agreement.

    python benchmarks/bench_rank.py [--repeats 5] [--size 19281] [--noise 1.3]

Both run in this process, alternately, on one tie-free float32 distance matrix; the
best time of each is compared. Peak memory is each side's RSS growth over one run in a
fresh process that has already loaded the matrix.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import common
import peer
from diffreid.evaluation import evaluate_rank


def run_side(side: str, data: dict) -> tuple[np.ndarray, float, float]:
    """(cmc, mAP, mINP) of one side."""
    args = (data["distmat"], data["q_pids"], data["g_pids"], data["q_camids"], data["g_camids"])
    if side == "peer":
        cmc, all_ap, all_inp = peer.rank_cy().evaluate_cy(*args, 50)
        return np.asarray(cmc), float(np.mean(all_ap)), float(np.mean(all_inp))
    result = evaluate_rank(*args, max_rank=50)
    return result["cmc"], result["mAP"], result["mINP"]


def make_data(size: int, noise: float) -> dict:
    q, g, q_pids, g_pids, q_camids, g_camids = common.market_like(**common.scaled(size), noise=noise)
    distmat = common.untie((2 - 2 * q @ g.T).astype(np.float32))  # squared distance of unit vectors
    return {"distmat": distmat, "q_pids": q_pids, "g_pids": g_pids, "q_camids": q_camids, "g_camids": g_camids}


def main() -> None:
    args = common.arguments(__doc__, noise=1.3, repeats=5).parse_args()
    if args.worker:
        return common.worker(*args.worker, run_side, prepare=peer.rank_cy)

    data = make_data(args.size, args.noise)
    peer.rank_cy()  # built (once) before anything is timed
    print(f"distmat {data['distmat'].shape[0]} x {data['distmat'].shape[1]} float32, "
          f"{len(np.unique(data['g_pids'][data['g_pids'] > 0]))} identities + distractors, 6 cameras")
    times = {"ours": [], "peer": []}
    results = {}
    for _ in range(args.repeats):
        for side in times:
            seconds, results[side] = common.timed(lambda: run_side(side, data))
            times[side].append(seconds)
    (cmc, mAP, mINP), (p_cmc, p_mAP, p_mINP) = results["ours"], results["peer"]
    gaps = {"cmc": float(np.abs(cmc - p_cmc).max()), "mAP": abs(mAP - p_mAP), "mINP": abs(mINP - p_mINP)}
    print(f"ours: mAP {mAP:.6f}  mINP {mINP:.6f}  rank-1 {cmc[0]:.6f}")
    print(f"peer: mAP {p_mAP:.6f}  mINP {p_mINP:.6f}  rank-1 {p_cmc[0]:.6f}")
    print("largest difference: " + ", ".join(f"{k} {v:.1e}" for k, v in gaps.items()))
    if max(gaps.values()) > 1e-6:
        sys.exit("results differ by more than 1e-6")

    with tempfile.TemporaryDirectory() as tmp:
        inputs = common.save_inputs(Path(tmp), data)
        memory = {side: common.peak_increase_mib(__file__, side, inputs) for side in times}
    best = {side: min(t) for side, t in times.items()}
    for side, label in (("ours", "diffreid evaluate_rank"), ("peer", "fast-reid 1.4.0 evaluate_cy")):
        print(f"{label:28s} best {best[side]:.3f} s of {args.repeats}, peak memory +{memory[side]:.0f} MiB")
    print(f"speedup: {best['peer'] / best['ours']:.1f}x   memory ratio (peer/ours): "
          f"{memory['peer'] / max(memory['ours'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
