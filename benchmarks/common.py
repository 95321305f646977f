"""What the benchmarks share: Market-1501- and MSMT17-shaped synthetic data, timing, peak memory."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MARKET = {"num_query": 3368, "num_gallery": 15913, "num_ids": 751, "num_distractors": 2798}
MSMT17 = {"num_query": 11659, "num_gallery": 82161, "num_ids": 3060, "num_distractors": 0, "num_cams": 15}


def market_like(num_query=3368, num_gallery=15913, num_ids=751, num_distractors=2798, num_cams=6, dim=256,
                noise=1.3, seed=0):
    """L2-normalised features and labels shaped like Market-1501's test split.

    Each identity is a random centre, each camera a shift, each image centre + shift +
    noise; every identity is in both query and gallery, and `num_distractors` gallery
    images (pid 0) are around centres of their own. At full size noise 1.3 gives an mAP
    near 0.79 and 1.6 near 0.5.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_ids + 1 + num_distractors, dim)).astype(np.float32)
    shifts = 0.6 * rng.standard_normal((num_cams, dim)).astype(np.float32)
    q_pids = np.concatenate([np.arange(1, num_ids + 1), rng.integers(1, num_ids + 1, num_query - num_ids)])
    true = num_gallery - num_distractors
    g_pids = np.concatenate([np.arange(1, num_ids + 1), rng.integers(1, num_ids + 1, true - num_ids),
                             np.zeros(num_distractors, dtype=np.int64)])
    g_centres = np.where(g_pids > 0, g_pids, num_ids + 1 + np.arange(num_gallery) - true)
    q_cams, g_cams = rng.integers(1, num_cams + 1, num_query), rng.integers(1, num_cams + 1, num_gallery)

    def images(centre_ids, cams):
        f = centres[centre_ids] + shifts[cams - 1] + noise * rng.standard_normal((len(cams), dim), dtype=np.float32)
        return f / np.linalg.norm(f, axis=1, keepdims=True)

    return images(q_pids, q_cams), images(g_centres, g_cams), q_pids, g_pids, q_cams, g_cams


def scaled(total: int) -> dict:
    """market_like arguments for `total` images in Market-1501's proportions."""
    share = total / (MARKET["num_query"] + MARKET["num_gallery"])
    sizes = {name: max(2, round(count * share)) for name, count in MARKET.items()}
    sizes["num_query"] = max(sizes["num_query"], sizes["num_ids"])
    return sizes


def msmt_like(scale: float = 1.0, dim: int = 512, noise: float = 1.6, seed: int = 0):
    """market_like features and labels in MSMT17's test-split shape, every count times `scale`."""
    sizes = {name: max(2, round(count * scale)) if count else 0 for name, count in MSMT17.items()}
    return market_like(**{**sizes, "num_cams": MSMT17["num_cams"]}, dim=dim, noise=noise, seed=seed)


def untie(dist: np.ndarray) -> np.ndarray:
    """Nudge equal distances within a row apart (to the next float) so each ranking is unique."""
    order = np.argsort(dist, axis=1, kind="stable")
    ranked = np.take_along_axis(dist, order, axis=1)
    while (same := np.diff(ranked, axis=1) <= 0).any():
        ranked[:, 1:][same] = np.nextafter(ranked[:, :-1][same], np.inf)
    np.put_along_axis(dist, order, ranked, axis=1)
    return dist


def timed(run):
    """(wall time in seconds, result) of run()."""
    start = time.perf_counter()
    result = run()
    return time.perf_counter() - start, result


def peak_rss_mib() -> float:
    """This process's resident-memory high-water mark (Linux's VmHWM)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def save_inputs(folder: Path, arrays: dict) -> str:
    """One .npy file per array: np.load reads those straight into place, with no temporary copy."""
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    return str(folder)


def load_inputs(folder: str) -> dict:
    return {path.stem: np.load(path) for path in Path(folder).glob("*.npy")}


def fresh_run(script: str, side: str, inputs: str) -> dict:
    """What `report_peak_increase` prints for one run of a side in a fresh process."""
    out = subprocess.run([sys.executable, script, "--worker", side, inputs], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_increase_mib(script: str, side: str, inputs: str) -> float:
    """Peak RSS growth while one side runs once, in a fresh process (see `report_peak_increase`)."""
    return fresh_run(script, side, inputs)["peak_increase_mib"]


def report_peak_increase(run) -> None:
    """In a worker: run() once and print how far it raised the process's peak RSS, as JSON.

    The inputs are loaded and the modules imported before, and the high-water mark is
    reset then (a forked process starts with its parent's), so only the run's own
    memory counts. Also printed: the run's time, the process's peak, and run()'s
    result when that is a dict.
    """
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = peak_rss_mib()
    seconds, result = timed(run)
    print(json.dumps({"peak_increase_mib": peak_rss_mib() - before, "peak_mib": peak_rss_mib(), "seconds": seconds,
                      "result": result if isinstance(result, dict) else None}))


def arguments(doc: str, noise: float, repeats: int | None, sized: bool = True) -> argparse.ArgumentParser:
    """The options the benchmarks take; --worker SIDE INPUTS is their memory run's entry.

    --size (Market-1501's by default) unless not `sized`; --repeats unless None.
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if sized:
        parser.add_argument("--size", type=int, default=MARKET["num_query"] + MARKET["num_gallery"],
                            help="query + gallery images")
    parser.add_argument("--noise", type=float, default=noise, help="feature noise: higher is harder")
    if repeats is not None:
        parser.add_argument("--repeats", type=int, default=repeats, help="timed runs of each side (the best counts)")
    parser.add_argument("--worker", nargs=2, metavar=("SIDE", "INPUTS"), help=argparse.SUPPRESS)
    return parser


def worker(side: str, inputs: str, run_side, prepare) -> None:
    """The memory run: load the saved inputs, prepare() (imports), report_peak_increase of run_side."""
    data = load_inputs(inputs)
    prepare()
    report_peak_increase(lambda: run_side(side, data))
