"""The report's "Representations" section: what ``fusebench analyze --study`` wrote, as rows and images.

Read from ``STUDY/representations/representations.json`` when it exists (the analysis is
optional and run separately, as it loads every checkpoint); the section says which seeds
it covers, so a study that gained runs since shows its analysis as older than the rest.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusebench.io import read_json_object
from fusebench.study.analysis_representations import FOLDER, cell_label
from fusebench.study.report_text import DASH, ci, mean_std

FILE = "representations.json"


def _image(path: Path, study_dir: Path, embed: bool) -> dict[str, str]:
    data = base64.b64encode(path.read_bytes()).decode("ascii") if embed else ""
    return {"file": path.relative_to(study_dir).as_posix(), "data": data}


def _per_seed(values: Mapping[str, Any]) -> str:
    return "; ".join(f"seed {s}: {DASH if v is None else f'{v:.3f}'}" for s, v in values.items())


def representation_context(study_dir: Path, embed: bool) -> dict[str, Any] | None:
    """Rows and figures of the representation analysis, or ``None`` when it was not run.

    Raises:
        DamagedFileError: ``representations.json`` is not a JSON object (a damaged file).
    """
    folder = study_dir / FOLDER
    file = folder / FILE
    if not file.is_file():
        return None
    payload = read_json_object(file)
    axes = len(payload.get("cells") or []) > 1
    cka_rows = [
        [
            row["modality"],
            row["condition"],
            row["comparison"],
            *([cell_label(row["axes"])] if axes else []),
            str((row["summary"] or {}).get("n", 0)),
            mean_std(row["summary"], 3),
            ci(row["summary"], 3),
            _per_seed(row["per_seed"]),
        ]
        for row in payload.get("cka_summary") or []
    ]
    probe_rows = [
        [
            row["modality"],
            row["condition"],
            row["stage"],
            *([cell_label(row["axes"])] if axes else []),
            str((row["summary"] or {}).get("n", 0)),
            mean_std(row["summary"]),
            ci(row["summary"]),
            _per_seed(row["per_seed"]),
        ]
        for row in payload.get("probe_summary") or []
    ]
    extra = ["axes"] if axes else []
    figures = []
    for name, entry in (payload.get("figures") or {}).items():
        path = folder / "figures" / str(entry.get("file"))
        if path.is_file():
            figures.append({"name": name, "image": _image(path, study_dir, embed)})
    return {
        "baseline": payload.get("baseline"),
        "metric": payload.get("primary_metric"),
        "seeds": sorted({s for c in payload.get("cells") or [] for s in c.get("seeds") or []}),
        "protocol": payload.get("protocol") or {},
        "cka_header": ["modality", "condition", "comparison", *extra, "n", "CKA mean ± std", "95% CI", "per seed"],
        "cka_rows": cka_rows,
        "probe_header": [
            "modality",
            "condition",
            "encoder",
            *extra,
            "n",
            f"probe test {payload.get('primary_metric')}",
            "95% CI",
            "per seed",
        ],
        "probe_rows": probe_rows,
        "figures": figures,
    }
