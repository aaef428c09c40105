"""The options every dataset shares; each dataset's options model extends :class:`DataOptions`.

A run config's ``data:`` section is one of the registered datasets' options models,
chosen by ``data.dataset`` (a discriminated union, see :mod:`fusebench.data.registry`),
so a dataset's own keys are validated as strictly as the rest of the config and a
misspelt one gets a did-you-mean answer. Third-party datasets subclass this model.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SplitName = Literal["train", "validation", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "validation", "test")


class StrictOptions(BaseModel):
    """Unknown keys are errors; assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataOptions(StrictOptions):
    """Batching, subsetting and train-time missingness: the same for every dataset.

    Subclasses add the dataset's own keys and narrow ``dataset`` to their registered name
    (``dataset: Literal["mydata"] = "mydata"``).
    """

    dataset: str
    modalities: list[str] | None = Field(
        default=None, description="use only these modalities of the dataset (ablations over subsets)"
    )
    limit: dict[SplitName, int] = Field(default_factory=dict, description="keep the first n samples of a split")
    train_fraction: float = Field(default=1.0, gt=0.0, le=1.0, description="seeded subset of the train split")
    batch_size: int = Field(default=128, ge=1)
    eval_batch_size: int = Field(
        default=64,
        ge=1,
        description="batch of validation, test, feature caching and probes; 64 was the fastest on a CPU "
        "(benchmarks/results.md: `make bench`, row `evaluation batch size`)",
    )
    missing_rate: dict[str, float] = Field(default_factory=dict)
    missing_patterns: dict[str, float] | None = Field(
        default=None, description="train on this mixture of patterns, e.g. {audio+image: 0.5, audio: 0.5}"
    )
    missing_resample: Literal["per_epoch", "fixed"] = Field(
        default="per_epoch",
        description="per_epoch: MCAR masks redrawn every epoch; fixed: MMPT section 2.2, a fixed set of pairs is "
        "split and the model trains on the aggregate unimodal + multimodal samples",
    )

    @field_validator("limit")
    @classmethod
    def _limits_are_counts(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {split: n for split, n in value.items() if n < 0}
        if bad:
            raise ValueError(f"`limit` values must be >= 0, got {bad}")
        return value

    @field_validator("modalities")
    @classmethod
    def _distinct_modalities(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or len(set(value)) != len(value)):
            raise ValueError(f"`modalities` must be a non-empty list without repeats, got {value}")
        return value

    @field_validator("missing_rate")
    @classmethod
    def _rates_are_probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for modality, rate in value.items():
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"missing_rate for `{modality}` must be in [0, 1), got {rate}")
        return value

    @model_validator(mode="after")
    def _one_missingness_source(self) -> DataOptions:
        if self.missing_patterns and any(r > 0 for r in self.missing_rate.values()):
            raise ValueError("set either `missing_rate` or `missing_patterns`, not both")
        return self

    def content_options(self) -> dict[str, object]:
        """The options that change which samples and values the dataset holds (not how it is batched).

        A run records their digest, so a study's ``--resume`` notices when the data changed.
        Subclasses whose keys do not all change the content override this.
        """
        skip = set(DataOptions.model_fields) - {"dataset", "limit"}
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in skip}

    def digest(self) -> str:
        """Short stable hash of :meth:`content_options`, prefixed with the dataset name."""
        payload = json.dumps(self.content_options(), sort_keys=True, default=str)
        return f"{self.dataset}:{hashlib.sha256(payload.encode()).hexdigest()[:16]}"
