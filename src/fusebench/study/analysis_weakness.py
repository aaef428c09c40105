"""Per-group MMPT profile and modality weakness: the paper's weakness score beside fusebench's headroom.

From the MMPT paper (``../shared/papers/004_d6fb5191247edfc1.txt``):

- **weakness score** (Definition 3, Eq. 3): ``W(m1 vs m2) = l(phi_m1, T_train without m2) /
  l(phi_m2, T_train without m1)``, the ratio of the two encoders' linear-probe cross-entropy
  losses on the *training* set. Below 1, ``m1`` is the dominant modality; above 1, ``m2``
  is. Each run's probes (``probe.enabled: true``, or ``fusebench probe``) compute it
  (:func:`fusebench.engine.probe.weakness_scores`) into ``probe_metrics.json``; here it is
  summarised over seeds per group (mean, t-interval of the mean).
- **MMPT profile** (Definition 2, Eq. 2): the full-modal and each unimodal test score, once
  from the fused head (the run's per-pattern test metrics) and once from linear probes on
  the frozen encoders (section 3.2, steps 2-3; ``mmpt_profile_probes`` of the probe file).

fusebench's own **headroom** ((full - only m) / (full - chance), :class:`fusebench.engine.mmpt.MMPTProfile`)
is a different quantity with a different name: the fraction of the above-chance full-modal
score lost when only ``m`` is present, computed from the saved test outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fusebench.data.patterns import pattern_name
from fusebench.engine.mmpt import mmpt_profile
from fusebench.io import read_json_object
from fusebench.study.analysis_groups import run_file, summary
from fusebench.study.analysis_modality import load_logits
from fusebench.study.records import RunRecord

PROBE_FILE = "probe_metrics.json"
PROBE_HINT = (
    "no run of this study has linear probes; set `shared_overrides: [probe.enabled=true]` in the spec "
    "(or run `fusebench probe RUN_DIR`) for the MMPT weakness score (Definition 3) and the probes' profile"
)


def pair_key(first: str, second: str) -> str:
    """``W(audio vs image)`` is stored under ``"audio vs image"``."""
    return f"{first} vs {second}"


def _probes(study_dir: Path, run: RunRecord) -> dict[str, Any] | None:
    file = run_file(study_dir, run, PROBE_FILE)
    if file is None:
        return None
    return read_json_object(file)


def weakness_analysis(
    study_dir: Path, runs: Sequence[RunRecord], modalities: Sequence[str], metric: str, configured_chance: float | None
) -> dict[str, Any]:
    """One group's weakness scores, headroom and both MMPT profiles, summarised over its completed seeds.

    Returns:
        ``{"weakness": {"audio vs image": {"per_seed": {seed: W}, "summary": ...}}, "probed_seeds": [...],
        "headroom": {m: {"per_seed", "summary"}}, "profile_head": {"full": ..., "unimodal": {m: ...}},
        "profile_probes": same or None}``; summaries are :func:`~fusebench.study.analysis_groups.summary`
        dicts (mean, std, t-interval, n).
    """
    names = sorted(modalities)
    full = pattern_name(names)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    weakness: dict[str, dict[int, float]] = {pair_key(a, b): {} for a, b in pairs}
    headroom: dict[str, dict[int, float]] = {m: {} for m in names}
    head: dict[str, dict[int, float]] = {p: {} for p in [full, *names]}
    probed: dict[str, dict[int, float]] = {p: {} for p in [full, *names]}
    probed_seeds: list[int] = []
    for run in sorted((r for r in runs if r.completed), key=lambda r: r.seed):
        seed = run.seed
        for p in head:
            value = run.test.get(p, {}).get(metric)
            if value is not None:
                head[p][seed] = float(value)
        saved = load_logits(study_dir, run) if len(names) > 1 else None
        if saved is not None and all(p in saved.logits for p in [full, *names]):
            fused = mmpt_profile(
                saved.logits, saved.target, names, metric, saved.task, chance=configured_chance, constant=saved.constant
            )
            for m, value in fused.headroom.items():
                headroom[m][seed] = value
        probes = _probes(study_dir, run)
        if probes is None:
            continue
        probed_seeds.append(seed)
        scores = probes.get("weakness") or {}
        for a, b in pairs:
            if b in scores.get(a, {}):
                weakness[pair_key(a, b)][seed] = float(scores[a][b])
        profile_probes = (probes.get("mmpt_profile_probes") or {}).get(metric)
        if profile_probes:
            probed[full][seed] = float(profile_probes["full"])
            for m in names:
                probed[m][seed] = float(profile_probes["unimodal"][m])

    def summed(values: Mapping[int, float]) -> dict[str, Any]:
        return {"per_seed": {str(s): v for s, v in values.items()}, "summary": summary(list(values.values()))}

    def profile(values: Mapping[str, Mapping[int, float]]) -> dict[str, Any] | None:
        if not any(values.values()):
            return None
        return {
            "full": summary(list(values[full].values())),
            "unimodal": {m: summary(list(values[m].values())) for m in names},
        }

    return {
        "weakness": {k: summed(v) for k, v in weakness.items()},
        "probed_seeds": probed_seeds,
        "headroom": {m: summed(v) for m, v in headroom.items()},
        "profile_head": profile(head),
        "profile_probes": profile(probed),
    }


def weakness_rows(analysis: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Report rows: per group, W per modality pair, headroom per modality and both profiles."""
    rows = []
    for group in analysis["groups"]:
        facts = group.get("mmpt_weakness") or {}
        rows.append(
            {
                "name": group["name"],
                "n": group["n"],
                "probed": len(facts.get("probed_seeds") or []),
                "weakness": {k: v.get("summary") for k, v in (facts.get("weakness") or {}).items()},
                "headroom": {m: v.get("summary") for m, v in (facts.get("headroom") or {}).items()},
                "profile_head": facts.get("profile_head"),
                "profile_probes": facts.get("profile_probes"),
            }
        )
    return rows


def any_probed(analysis: Mapping[str, Any]) -> bool:
    return any((g.get("mmpt_weakness") or {}).get("probed_seeds") for g in analysis["groups"])
