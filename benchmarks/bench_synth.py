"""Speed of `diffreid data synth`: images per second, and the time 10,000 images take.

Target: 10,000 images in under a minute on a 2-core machine. The peer, measured in
the same run, is the same renderer in a single process, so the printed ratio is what
the worker pool buys on this machine.

    python benchmarks/bench_synth.py [--identities 500] [--style market] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from diffreid.config import SynthConfig
from diffreid.data.synth import DEFAULT_STYLE, STYLES, synthesize


def images_per_second(root: Path, identities: int, style: str, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    out = synthesize(SynthConfig(out=root, identities=identities, style=style, seed=0), workers=workers)
    seconds = time.perf_counter() - start
    images = json.loads((out / "manifest.json").read_text())["counts"]["images"]
    return images / seconds, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=500, help="identities to render (500: ~10,000 images)")
    parser.add_argument("--style", default=DEFAULT_STYLE, choices=sorted(STYLES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--peer-identities", type=int, default=50, help="identities for the one-process peer")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rate, images = images_per_second(Path(tmp) / "pool", args.identities, args.style, args.workers)
        peer, _ = images_per_second(Path(tmp) / "peer", args.peer_identities, args.style, 1)
    print(f"style {args.style}: {images} images, {args.workers} workers: {rate:.0f} images/s; "
          f"1 process: {peer:.0f} images/s; ratio {rate / peer:.2f}x")
    print(f"10,000 images: {10_000 / rate:.1f} s (target < 60 s)")


if __name__ == "__main__":
    main()
