"""re_rank against the original k-reciprocal re-ranking (fast-reid 1.4.0's copy): time, memory, mAP.

    python benchmarks/bench_rerank.py [--size 19281] [--noise 1.6] [--repeats 3] [--peer-repeats 1] [--no-memory]

At the default size, Market-1501's 3,368 queries + 15,913 gallery images, the original
takes minutes and several GB. Both run in this process on the same squared-Euclidean
distances (k1=20, k2=6, lambda=0.3); each re-ranked matrix is scored with
evaluate_rank. Peak memory is each side's RSS growth over one run in a fresh process.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import common
import peer
from diffreid.evaluation import evaluate_rank, re_rank
from diffreid.evaluation.distance import pairwise_distance


def run_side(side: str, data: dict) -> np.ndarray:
    args = (data["q_g"], data["q_q"], data["g_g"])
    return peer.re_ranking()(*args) if side == "peer" else re_rank(*args)


def score(dist: np.ndarray, data: dict) -> float:
    return evaluate_rank(dist, data["q_pids"], data["g_pids"], data["q_camids"], data["g_camids"])["mAP"]


def make_data(size: int, noise: float) -> dict:
    q, g, q_pids, g_pids, q_camids, g_camids = common.market_like(**common.scaled(size), noise=noise)
    return {"q_g": pairwise_distance(q, g, "euclidean"), "q_q": pairwise_distance(q, q, "euclidean"),
            "g_g": pairwise_distance(g, g, "euclidean"),
            "q_pids": q_pids, "g_pids": g_pids, "q_camids": q_camids, "g_camids": g_camids}


def main() -> None:
    parser = common.arguments(__doc__, noise=1.6, repeats=3)
    parser.add_argument("--peer-repeats", type=int, default=1, help="timed runs of the original (the best counts)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    args = parser.parse_args()
    if args.worker:
        return common.worker(*args.worker, run_side, prepare=peer.re_ranking)

    data = make_data(args.size, args.noise)
    nq, ng = data["q_g"].shape
    print(f"{nq} queries + {ng} gallery images = {nq + ng}, squared Euclidean float32")
    times = {"ours": [], "peer": []}
    outputs = {}
    for side, repeats in (("ours", args.repeats), ("peer", args.peer_repeats)):
        for _ in range(repeats):
            seconds, outputs[side] = common.timed(lambda: run_side(side, data))
            times[side].append(seconds)
    maps = {side: score(dist, data) for side, dist in outputs.items()}
    print(f"mAP without re-ranking {score(data['q_g'], data):.4f}; re-ranked: ours {maps['ours']:.4f}, "
          f"original {maps['peer']:.4f}, difference {100 * abs(maps['ours'] - maps['peer']):.4f} points")
    print(f"largest difference of re-ranked distances: {np.abs(outputs['ours'] - outputs['peer']).max():.1e}")
    memory = {}
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as tmp:
            inputs = common.save_inputs(Path(tmp), {k: data[k] for k in ("q_g", "q_q", "g_g")})
            memory = {side: common.peak_increase_mib(__file__, side, inputs) for side in times}
    best = {side: min(t) for side, t in times.items()}
    for side, label in (("ours", "diffreid re_rank"), ("peer", "original (fast-reid 1.4.0)")):
        peak = f", peak memory +{memory[side]:.0f} MiB" if memory else ""
        print(f"{label:27s} best {best[side]:.2f} s of {len(times[side])}{peak}")
    print(f"speedup: {best['peer'] / best['ours']:.1f}x" +
          (f"   memory ratio (original/ours): {memory['peer'] / memory['ours']:.1f}x" if memory else ""))
    if abs(maps["ours"] - maps["peer"]) > 0.001:
        sys.exit("mAP differs by more than 0.1 points")


if __name__ == "__main__":
    main()
