"""The claims' backbones zero-shot on PRID, GRID, i-LIDS (issue 22, docs/results.md), over seeds.

    python benchmarks/claims_small.py RESULTS_JSON [--baseline MODEL]

RESULTS_JSON: what `diffreid benchmark small` wrote for the models of benchmarks/claims_cuhk01.sh,
whose paths end in pretrain/ARM/seedS (a pre-training run) or are one fixed model (the ImageNet
features, no seeds). A model's number on a set is its mean over the benchmark's trials (the same
trials for every model); an arm's cell is the mean over its seeds ± the 95% Student-t half-width.
Against the baseline (an arm, or the fixed model), the paired verdict of
diffreid.evaluation.intervals over seeds; a fixed model stands at every seed of the arm it meets.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from diffreid.evaluation.intervals import paired_verdict, percent, t_interval

RUN = re.compile(r"pretrain/(?P<arm>[^/]+)/seed(?P<seed>\d+)/?$")


def arms(results: dict) -> dict[str, dict[int, str]]:
    """{arm: {seed: model}}; a model that is not a seeded pre-training run is its own arm, seed 0."""
    grouped = defaultdict(dict)
    for spec in results["models"]:
        match = RUN.search(spec)
        arm, seed = (match["arm"], int(match["seed"])) if match else (Path(spec).stem, 0)
        grouped[arm][seed] = spec
    return grouped


def by_seed(results: dict, runs: dict[int, str], name: str, metric: str, seeds) -> dict[int, float]:
    """An arm's value at each seed: a fixed model (no seeds) has its one value at every seed of `seeds`."""
    if len(runs) == 1 and not RUN.search(next(iter(runs.values()))):
        return {seed: results["models"][next(iter(runs.values()))][name]["mean"][metric] for seed in seeds}
    return {seed: results["models"][spec][name]["mean"][metric] for seed, spec in runs.items()}


def table(results: dict, baseline: str, metric: str) -> str:
    grouped = arms(results)
    if baseline not in grouped:
        raise SystemExit(f"--baseline {baseline}: not among {', '.join(grouped)}")
    sets = list(results["datasets"])
    lines = [f"| arm | seeds | {' | '.join(sets)} |", "| --- | --- |" + " --- |" * len(sets)]
    verdicts = []
    for arm, runs in grouped.items():
        cells = []
        for name in sets:
            values = by_seed(results, runs, name, metric, runs)
            cells.append(percent(*t_interval(list(values.values()))))
            if arm != baseline:
                base = by_seed(results, grouped[baseline], name, metric, values)
                verdict = paired_verdict(by_seed(results, runs, name, metric, base), base)
                low, high = verdict["low"], verdict["high"]
                span = "" if low is None else f" [{100 * low:+.1f}, {100 * high:+.1f}]"
                verdicts.append(f"- {arm} on {name}: {100 * verdict['difference']:+.1f}{span} points of {metric} "
                                f"against {baseline}: {verdict['verdict']}")
        lines.append(f"| {arm} | {len(runs)} | {' | '.join(cells)} |")
    first = next(iter(results["models"].values()))
    sizes = ", ".join(f"{name} {first[name]['num_query']} queries / {first[name]['num_gallery']} gallery"
                      for name in sets)
    return "\n".join([f"{metric}, {results['trials']} trials each ({sizes}):", "", *lines, "", *verdicts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--baseline", default="mobilenet_v2_imagenet_features")
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    for metric in ("mAP", "rank1"):
        print(table(results, args.baseline, metric), end="\n\n")


if __name__ == "__main__":
    main()
