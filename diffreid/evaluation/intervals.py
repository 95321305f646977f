"""The project's 95% intervals: of a share over images or people, and of a metric over seeds.

A share (closer-to-own, kept by a filter) gets the Wilson interval over its images or people.
A cell of the results (an initialisation on a setting) is the mean over the seeds of its
training runs ± the half-width of the Student-t 95% confidence interval of that mean
(t_{0.975, n-1} · s / √n, s the sample standard deviation over n seeds).

A comparison of initialisation A against B on a setting pairs their runs by seed (the
same seed draws the same few-shot or small-scale subset and the same batches), takes
the per-seed differences d_s = A_s − B_s and the paired Student-t 95% interval of their
mean. The verdict: "beats" when the whole interval is above 0, "loses" when it is below
0, "within noise" when it holds 0. With fewer paired seeds than `min_seeds` there is no
verdict: "not enough seeds". A paired interval of the difference, not the overlap of two
intervals: two means whose intervals overlap can still differ significantly, and pairing
removes the variance the two share through the seed.
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95  # one confidence level for every interval
MIN_SEEDS = 3  # paired seeds a claim needs by default (a run config's `report: min_seeds`)


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion: unlike the normal approximation it stays inside
    [0, 1] and keeps its coverage near 0% and 100%, where generated-image rates often lie."""
    from scipy import stats

    if n <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf((1 + level) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def t_interval(values, level: float = LEVEL) -> tuple[float, float | None]:
    """Mean and the half-width of its Student-t interval; None with fewer than two values."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return math.nan, None
    mean = float(values.mean())
    if len(values) < 2:
        return mean, None
    half = float(stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, half


def percent(mean: float, ci: float | None) -> str:
    """A share or a mean over seeds as the results show it: with its interval's half-width when it has one."""
    return f"{mean:.1%}" if ci is None else f"{100 * mean:.1f} ± {100 * ci:.1f}%"


def paired_verdict(a: dict[int, float], b: dict[int, float], min_seeds: int = MIN_SEEDS,
                   level: float = LEVEL) -> dict:
    """A against B, each {seed: value}: the paired difference over shared seeds and the verdict."""
    shared = sorted(set(a) & set(b))
    mean, half = t_interval([a[s] - b[s] for s in shared], level)
    if len(shared) < min_seeds or half is None:
        verdict = "not enough seeds"
    elif mean - half > 0:
        verdict = "beats"
    elif mean + half < 0:
        verdict = "loses"
    else:
        verdict = "within noise"
    return {"seeds": shared, "difference": mean, "low": None if half is None else mean - half,
            "high": None if half is None else mean + half, "verdict": verdict}
