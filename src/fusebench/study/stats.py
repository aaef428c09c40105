"""Paired comparisons of two conditions over the same seeds.

A study runs conditions A and B once per seed, so the unit is the per-seed difference
``b - a``: paired t-test, Wilcoxon signed-rank test, the interval of the mean difference
(paired t by default, see :mod:`fusebench.study.intervals`) and paired effect size come
from scipy, Holm from statsmodels; this module pairs, validates, handles degenerate cases
openly and records ``n`` next to every p-value. The plain summary of one condition over
its seeds is in :mod:`fusebench.study.seed_summary`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats
from statsmodels.stats.multitest import multipletests

from fusebench.study.intervals import BCA_MIN_N, IntervalMethod, bca_interval, resolve_method, t_interval

PField = Literal["p_ttest", "p_wilcoxon"]
Values = Sequence[float] | npt.NDArray[Any]
_P_FIELDS = ("p_ttest", "p_wilcoxon")


@dataclass(frozen=True)
class PairedComparison:
    """Condition B against condition A on one metric, paired by seed.

    Attributes:
        metric: name of the compared metric, e.g. ``"accuracy"``.
        condition_a: the reference condition.
        condition_b: the condition compared against it.
        n: number of seeds with both values present (the n behind every p-value here).
        mean_a, mean_b: means of A and of B over those seeds.
        mean_diff: mean of the per-seed differences ``b - a``.
        ci_low, ci_high: interval of ``mean_diff`` at ``confidence`` (``ci_method`` says which).
        t_statistic: paired t statistic (positive when B is larger); NaN if undefined.
        p_ttest: two-sided paired t-test p-value; NaN if undefined (see ``note``).
        p_wilcoxon: two-sided Wilcoxon signed-rank p-value; NaN if undefined.
        hedges_g: bias-corrected paired effect size ``g_z``; NaN if undefined.
        p_holm: Holm-adjusted p-value, NaN until :func:`holm_adjust` fills it.
        p_holm_source: which p-value ``p_holm`` adjusts ("" until adjusted).
        confidence: level of ``[ci_low, ci_high]``.
        note: human-readable caveats (degenerate data, p-value floors, dropped NaNs).
        ci_method: ``"t"`` (paired t-interval) or ``"bca"`` (BCa bootstrap).
        wilcoxon_floor: the smallest two-sided exact Wilcoxon p possible with this many
            non-zero differences, ``2 / 2**n_nonzero``; NaN when every difference is zero.
    """

    metric: str
    condition_a: str
    condition_b: str
    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    t_statistic: float
    p_ttest: float
    p_wilcoxon: float
    hedges_g: float
    p_holm: float = math.nan
    p_holm_source: str = ""
    confidence: float = 0.95
    note: str = ""
    ci_method: str = "t"
    wilcoxon_floor: float = math.nan


def check_confidence(confidence: float) -> None:
    """Raise unless ``confidence`` is a level in (0, 1) (also used by :mod:`fusebench.study.seed_summary`)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"Expected `confidence` in (0, 1), got {confidence}.")


def hedges_g_paired(diffs: Values) -> float:
    """Paired-design Hedges' g: ``d_z`` times the small-sample correction ``J``.

    ``d_z = mean(d) / sd(d)`` (sd at ddof=1; Lakens 2013) times Hedges' (1981) correction
    ``J = 1 - 3 / (4 (n - 1) - 1)``. This "g_z" standardises by the sd of the differences,
    so it is not comparable with a between-groups ``g_s``. NaN if ``n < 3`` (J = 0) or sd = 0.

    >>> round(hedges_g_paired([1.0, 2.0, 3.0]), 4)  # d_z = 2, J = 4/7
    1.1429
    """
    d = np.asarray(diffs, dtype=float)
    n = d.size
    if n < 3:
        return math.nan
    sd = float(np.std(d, ddof=1))
    if sd == 0.0:
        return math.nan
    correction = 1.0 - 3.0 / (4.0 * (n - 1) - 1.0)
    return float(np.mean(d) / sd * correction)


def wilcoxon_floor(n_nonzero: int) -> float:
    """Smallest two-sided p of the exact signed-rank test with ``n_nonzero`` differences.

    All differences of one sign give the extreme statistic, which has probability
    ``2**-n`` under the null, doubled for two sides: ``2 / 2**n``.

    >>> wilcoxon_floor(5)
    0.0625
    """
    return 2.0 / 2.0**n_nonzero if n_nonzero > 0 else math.nan


def _wilcoxon(diffs: np.ndarray, notes: list[str]) -> float:
    nonzero = int(np.count_nonzero(diffs))
    if nonzero == 0:
        notes.append("Wilcoxon undefined: every paired difference is zero")
        return math.nan
    # Why: the exact two-sided signed-rank p cannot go below 2 / 2**n_nonzero,
    # so with few seeds no difference can ever reach p < 0.05.
    floor = wilcoxon_floor(nonzero)
    if floor >= 0.05:
        notes.append(f"Wilcoxon p cannot go below {floor:.3g} with {nonzero} non-zero differences")
    if nonzero < diffs.size:
        notes.append(f"Wilcoxon dropped {diffs.size - nonzero} zero differences")
    return float(stats.wilcoxon(diffs).pvalue)


def _interval(
    diffs: np.ndarray, method: str, confidence: float, n_resamples: int, seed: int, notes: list[str]
) -> tuple[float, float]:
    if np.ptp(diffs) == 0.0:
        notes.append("interval is a point: every paired difference is equal")
    if method == "t":
        return t_interval(diffs, confidence)
    low, high = bca_interval(diffs, confidence, n_resamples, seed)
    if math.isnan(low) or math.isnan(high):
        notes.append("bootstrap CI undefined (degenerate bootstrap distribution)")
    return low, high


def paired_comparison(
    a: Values,
    b: Values,
    *,
    metric: str,
    condition_a: str,
    condition_b: str,
    confidence: float = 0.95,
    interval: IntervalMethod = "t",
    n_resamples: int = 9999,
    seed: int = 0,
) -> PairedComparison:
    """Compare condition B with condition A on values paired by seed.

    ``a[i]`` and ``b[i]`` must come from the same seed. Pairs where either value is NaN
    (a failed run) are dropped, and the record's ``n`` is the number actually used.

    Args:
        a: per-seed values of the reference condition.
        b: per-seed values of the compared condition, same seed order as ``a``.
        metric, condition_a, condition_b: names copied into the record.
        confidence: level of the interval of the mean difference.
        interval: ``"t"`` (paired t-interval, the default), ``"bca"`` (BCa bootstrap) or
            ``"auto"`` (t below ``intervals.BCA_MIN_N`` pairs, BCa from there).
        n_resamples: bootstrap resamples (BCa, ``scipy.stats.bootstrap``).
        seed: seed of the bootstrap generator, so a report is reproducible.

    Returns:
        The comparison; ``mean_diff`` and ``t_statistic`` are positive when B is larger.

    Raises:
        ValueError: if the lengths differ or fewer than two complete pairs remain.

    >>> r = paired_comparison([0.80, 0.82, 0.81, 0.79, 0.80], [0.85, 0.86, 0.84, 0.85, 0.86],
    ...                       metric="accuracy", condition_a="scratch", condition_b="pretrained")
    >>> r.n, round(r.mean_diff, 3), r.ci_low < r.mean_diff < r.ci_high
    (5, 0.048, True)
    """
    check_confidence(confidence)
    a_arr = np.asarray(a, dtype=float).ravel()
    b_arr = np.asarray(b, dtype=float).ravel()
    if a_arr.size != b_arr.size:
        raise ValueError(
            f"Expected `a` ({condition_a}) and `b` ({condition_b}) to have one value per seed "
            f"in the same order, got lengths {a_arr.size} and {b_arr.size}."
        )
    notes: list[str] = []
    keep = ~(np.isnan(a_arr) | np.isnan(b_arr))
    if not keep.all():
        notes.append(f"dropped {int((~keep).sum())} of {a_arr.size} pairs with a NaN value")
    a_arr, b_arr = a_arr[keep], b_arr[keep]
    n = int(a_arr.size)
    if n < 2:
        raise ValueError(
            f"Expected at least 2 complete seed pairs to compare `{condition_b}` with "
            f"`{condition_a}` on `{metric}`, got n={n}."
        )
    diffs = b_arr - a_arr
    method = resolve_method(interval, n)
    if method == "bca" and n < BCA_MIN_N:
        notes.append(f"BCa interval with n = {n}: it covers well below its level at this n")
    ci_low, ci_high = _interval(diffs, method, confidence, n_resamples, seed, notes)
    if np.ptp(diffs) == 0.0:
        notes.append("t-test undefined: paired differences have zero variance")
        t_statistic, p_ttest = math.nan, math.nan
    else:
        t_result = stats.ttest_rel(b_arr, a_arr)
        t_statistic, p_ttest = float(t_result.statistic), float(t_result.pvalue)
    p_wilcoxon = _wilcoxon(diffs, notes)
    g = hedges_g_paired(diffs)
    if n < 3:
        notes.append("Hedges g undefined for n=2 (correction J is 0 at df=1)")
    return PairedComparison(
        metric=metric,
        condition_a=condition_a,
        condition_b=condition_b,
        n=n,
        mean_a=float(np.mean(a_arr)),
        mean_b=float(np.mean(b_arr)),
        mean_diff=float(np.mean(diffs)),
        ci_low=ci_low,
        ci_high=ci_high,
        t_statistic=t_statistic,
        p_ttest=p_ttest,
        p_wilcoxon=p_wilcoxon,
        hedges_g=g,
        confidence=confidence,
        note="; ".join(notes),
        ci_method=method,
        wilcoxon_floor=wilcoxon_floor(int(np.count_nonzero(diffs))),
    )


def holm_adjust(
    comparisons: Sequence[PairedComparison], p_field: PField | Sequence[PField] = "p_ttest"
) -> list[PairedComparison]:
    """Holm-adjust one family of comparisons.

    The family is every comparison whose p-value is not NaN; NaN p-values stay NaN in
    ``p_holm`` and do not count towards the family size. Uses
    ``statsmodels.stats.multitest.multipletests(method="holm")`` (Holm 1979).

    Args:
        comparisons: the family, e.g. the primary comparisons of one report.
        p_field: ``"p_ttest"`` or ``"p_wilcoxon"`` for every comparison, or one field per
            comparison (a rank test for censored epochs-to-threshold beside t-tests).

    Returns:
        New records, in input order, with ``p_holm`` and ``p_holm_source`` set.

    Raises:
        ValueError: if a field is not a p-value field or the fields do not match the records.
    """
    fields = [p_field] * len(comparisons) if isinstance(p_field, str) else list(p_field)
    if len(fields) != len(comparisons):
        raise ValueError(f"Expected one `p_field` per comparison, got {len(fields)} for {len(comparisons)}.")
    for name in fields:
        if name not in _P_FIELDS:
            raise ValueError(f"Expected `p_field` in {list(_P_FIELDS)}, got `{name}`.")
    raw = np.array([getattr(c, f) for c, f in zip(comparisons, fields, strict=True)], dtype=float)
    adjusted = np.full(raw.shape, math.nan)
    finite = ~np.isnan(raw)
    if finite.any():
        adjusted[finite] = multipletests(raw[finite], method="holm")[1]
    return [replace(c, p_holm=float(p), p_holm_source=f) for c, p, f in zip(comparisons, adjusted, fields, strict=True)]


def comparison_table(comparisons: Sequence[PairedComparison]) -> list[dict[str, Any]]:
    """Plain rows (str, int, float only) for report tables and JSON, one per comparison.

    Keys follow the :class:`PairedComparison` fields: n, means, mean_diff, CI and its
    confidence, t, both p-values, Holm p and its source, Hedges g, note.
    """
    return [asdict(comparison) for comparison in comparisons]
