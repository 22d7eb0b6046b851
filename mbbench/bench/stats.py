"""Statistics of one configuration's timed rounds. numpy and the standard library only.

Every number is named for what it is (pyperf's rule): the standard deviation is the sample one (ddof=1),
percentiles use numpy's default linear interpolation, and the confidence interval is Student's t on the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from mbbench.bench.formatting import format_ms

#: A coefficient of variation above this flags the row: at 10% the 95% CI of a 30-round mean is still
#: narrow, but the distribution is wide enough that a single run of the model can be far from the mean.
CV_LIMIT = 0.10

#: Two-cluster test (see :func:`two_clusters`): below this many rounds there is no telling clusters from noise.
BIMODAL_MIN_ROUNDS = 20
#: The smaller cluster must hold at least this share of the rounds and this many of them, so a few slow
#: outliers (a page fault, a preempted round) are not a "mode": they already show in max_ms and p99_ms.
BIMODAL_MIN_SHARE = 0.10
BIMODAL_MIN_COUNT = 5
#: Ashman's D between the two clusters. A large normal sample cut at its mean gives D = 2.65 and a uniform one
#: 3.46, so the textbook D > 2 would flag every unimodal sample. Simulated 30-round samples of unimodal shapes
#: (normal, lognormal, gamma, exponential, uniform, Pareto tail) exceed 5 in at most ~5% of cases, while a
#: 4 ms / 15 ms flip, or 4.0 / 4.8 ms modes with 0.1 ms spread, are caught every time.
BIMODAL_MIN_SEPARATION = 5.0
#: ...and the slow cluster's mean must be this much above the fast one's, so sub-percent timer structure in
#: an extremely tight sample is not reported.
BIMODAL_MIN_GAP = 0.05


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one configuration's timed rounds, in milliseconds."""

    rounds: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cv: float
    ci95_low_ms: float
    ci95_high_ms: float
    bimodal: bool
    #: mean of the fast and the slow cluster when ``bimodal``, else None
    modes_ms: tuple[float, float] | None = None

    @property
    def unstable(self) -> bool:
        return self.bimodal or (math.isfinite(self.cv) and self.cv > CV_LIMIT)

    def reasons(self) -> list[str]:
        """Why the row is flagged, in words (empty when it is not). The cv shows the digits that decide."""
        out = []
        if math.isfinite(self.cv) and self.cv > CV_LIMIT:
            out.append(f"cv {cv_text(self.cv)} > {CV_LIMIT:.0%}")
        if self.bimodal:
            if self.modes_ms is not None:
                fast, slow = (format_ms(v) for v in self.modes_ms)
                out.append(f"the rounds split into a fast ({fast} ms) and a slow ({slow} ms) cluster")
            else:
                out.append("the rounds split into a fast and a slow cluster")
        return out

    def mode_columns(self) -> dict[str, object]:
        """The cluster means of a bimodal row (empty cells otherwise)."""
        fast, slow = self.modes_ms if self.modes_ms is not None else (None, None)
        return {"mode_fast_ms": fast, "mode_slow_ms": slow}

    @classmethod
    def from_row(cls, row) -> LatencyStats:
        """Rebuild the statistics from a results row (a CSV dict or a saved row), to ask it :meth:`reasons`."""

        def number(name: str) -> float:
            try:
                return float(row.get(name))
            except (TypeError, ValueError):
                return math.nan

        bimodal = str(row.get("bimodal")).strip().lower() == "true" or row.get("bimodal") is True
        fast, slow = number("mode_fast_ms"), number("mode_slow_ms")
        modes = (fast, slow) if math.isfinite(fast) and math.isfinite(slow) else None
        rounds = number("rounds")
        return cls(
            rounds=int(rounds) if math.isfinite(rounds) else 0,
            **{name: number(name) for name in ("mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms",
                                               "max_ms", "cv", "ci95_low_ms", "ci95_high_ms")},
            bimodal=bimodal,
            modes_ms=modes,
        )

    def as_columns(self) -> dict[str, object]:
        return {
            "rounds": self.rounds,
            "mean_ms": self.mean_ms,
            "std_ms": self.std_ms,
            "min_ms": self.min_ms,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "cv": self.cv,
            "ci95_low_ms": self.ci95_low_ms,
            "ci95_high_ms": self.ci95_high_ms,
            "unstable": self.unstable,
            "bimodal": self.bimodal,
        }


def cv_text(cv: float) -> str:
    """The cv as a percent with the fewest decimals (at least one) that still show it above :data:`CV_LIMIT`."""
    for digits in range(1, 7):
        text = f"{cv * 100:.{digits}f}"
        if float(text) > CV_LIMIT * 100:
            return f"{text}%"
    return f"{cv * 100:.6f}%"


def latency_stats(samples_ms) -> LatencyStats:
    """Statistics of per-round latencies in ms (any 1-D array-like of finite, non-negative numbers)."""
    x = np.asarray(samples_ms, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("latency_stats needs at least one sample")
    if not np.all(np.isfinite(x)):
        raise ValueError("latency samples must be finite")
    n = int(x.size)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    p50, p90, p99 = (float(v) for v in np.percentile(x, [50, 90, 99]))
    cv = std / mean if n > 1 and mean > 0 else math.nan
    if n > 1:
        half = t_critical(0.95, n - 1) * std / math.sqrt(n)
        low, high = mean - half, mean + half
    else:
        low = high = math.nan
    modes = two_clusters(x)
    return LatencyStats(
        rounds=n,
        mean_ms=mean,
        std_ms=std,
        min_ms=float(x.min()),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=float(x.max()),
        cv=cv,
        ci95_low_ms=low,
        ci95_high_ms=high,
        bimodal=modes is not None,
        modes_ms=modes,
    )


def two_clusters(samples) -> tuple[float, float] | None:
    """The (fast, slow) cluster means if the samples split into two well-separated groups, else None.

    The split is the best two-means cut of the sorted samples (exact in 1-D); it counts as two clusters only
    when the smaller side holds :data:`BIMODAL_MIN_SHARE` of the rounds (and at least
    :data:`BIMODAL_MIN_COUNT`), Ashman's D of the two sides reaches :data:`BIMODAL_MIN_SEPARATION` and the
    means differ by :data:`BIMODAL_MIN_GAP`. That catches a machine that flips between a fast and a slow
    state, not a long tail of outliers.
    """
    x = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    n = x.size
    if n < BIMODAL_MIN_ROUNDS:
        return None
    smallest = max(BIMODAL_MIN_COUNT, math.ceil(BIMODAL_MIN_SHARE * n))
    if 2 * smallest > n:
        return None
    # centre first: the prefix-sum variance formula loses digits when the values sit far from zero
    x_c = x - x.mean()
    csum = np.concatenate(([0.0], np.cumsum(x_c)))
    csq = np.concatenate(([0.0], np.cumsum(x_c * x_c)))
    k = np.arange(smallest, n - smallest + 1)  # size of the fast side
    left_ss = csq[k] - csum[k] ** 2 / k
    right_ss = (csq[n] - csq[k]) - (csum[n] - csum[k]) ** 2 / (n - k)
    best = int(k[np.argmin(left_ss + right_ss)])
    fast, slow = x[:best], x[best:]
    mu_fast, mu_slow = float(fast.mean()), float(slow.mean())
    spread = math.sqrt(float(fast.var(ddof=1)) + float(slow.var(ddof=1)))
    if mu_fast <= 0 or (mu_slow - mu_fast) / mu_fast < BIMODAL_MIN_GAP:
        return None
    separation = math.inf if spread == 0 else math.sqrt(2.0) * (mu_slow - mu_fast) / spread
    if separation < BIMODAL_MIN_SEPARATION:
        return None
    return mu_fast, mu_slow


def t_critical(confidence: float, df: int) -> float:
    """Two-sided critical value of Student's t: P(|T| <= t) = ``confidence`` with ``df`` degrees of freedom.

    Standard library only (the portable core has no scipy): exact for df <= 100 by bisection on the
    closed-form CDF for integer df (Abramowitz & Stegun 26.7.3/26.7.4), Cornish-Fisher above
    (A&S 26.7.5, error below 1e-9 there).
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    if int(df) != df or df < 1:
        raise ValueError("degrees of freedom must be a positive integer")
    df = int(df)
    if df > 100:
        return _cornish_fisher(NormalDist().inv_cdf(0.5 + confidence / 2), df)
    low, high = 0.0, math.pi / 2
    for _ in range(100):
        mid = (low + high) / 2
        if _two_sided_mass(mid, df) < confidence:
            low = mid
        else:
            high = mid
    return math.sqrt(df) * math.tan((low + high) / 2)


def _two_sided_mass(theta: float, df: int) -> float:
    """P(|T| <= sqrt(df) * tan(theta)) for integer df."""
    c2 = math.cos(theta) ** 2
    s = math.sin(theta)
    if df % 2:
        if df == 1:
            return 2 * theta / math.pi
        term = total = 1.0
        for k in range(1, (df - 3) // 2 + 1):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + s * math.cos(theta) * total)
    term = total = 1.0
    for k in range(1, (df - 2) // 2 + 1):
        term *= c2 * (2 * k - 1) / (2 * k)
        total += term
    return s * total


def _cornish_fisher(z: float, df: int) -> float:
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
