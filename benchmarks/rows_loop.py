"""Rows measured in this process against the bare loop: training epochs, the whole run, test passes.

Every fusebench number here comes from ``execute_run`` on data loaded once (so the data load
is not in it) with ``experiment.threads`` as the bench's, the progress bar off (the bench's
output is not a terminal) and everything else as the shipped config sets it, monitoring
included. A fusebench training epoch is the run's own ``timing.json``: ``training_cpu``
(this process's CPU seconds in the training epochs) and ``training`` (wall seconds).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from bare import bare_split, late_fusion_cnn, test_pass, train_epoch
from harness import ROOT, Paired, Sample, abba, timed

TINY_WIDTHS = [4]


def run_config(name: str, overrides: Sequence[str], threads: int) -> Any:
    from fusebench.config import load_config

    return load_config(
        ROOT / "configs" / "avdigits" / name,
        [f"experiment.threads={threads}", "logging.progress_bar=false", "training.epochs=1", *overrides],
    )


def with_overrides(config: Any, overrides: Sequence[str]) -> Any:
    from fusebench.config import apply_overrides, validate_config

    return validate_config(apply_overrides(config.model_dump(mode="json"), list(overrides)))


class Bench:
    """The data of one config loaded once, its bare copy, and the two ways to train an epoch on it."""

    def __init__(self, config: Any) -> None:
        from fusebench.engine.datasets import run_splits

        torch.set_num_threads(config.experiment.threads)
        self.config = config
        self.data = run_splits(config)
        self.bare = {
            name: bare_split(self.data.split(name).inputs, self.data.split(name).target)
            for name in ("train", "validation", "test")
        }
        widths = list(config.model.encoders["audio"].widths)
        self.model = late_fusion_cnn(widths, self.data.input_shapes)
        self._check_same_model()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.training.optimizer.lr)
        self.folder = Path(tempfile.mkdtemp(prefix="fusebench-bench-"))
        self.runs = 0

    def _check_same_model(self) -> None:
        from fusebench.engine.build import build_model

        built = build_model(self.config, self.data.input_shapes, self.data.task.output_size, self.data.modality_info)
        mine = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in built.state_dict().items()}
        if mine != theirs:
            raise RuntimeError(f"The bare model differs from fusebench's: {sorted(set(mine) ^ set(theirs))}")

    def steps(self) -> int:
        return -(-len(self.bare["train"]) // self.config.data.batch_size)

    def bare_epoch(self) -> Sample:
        self.runs += 1
        return timed(
            lambda: train_epoch(self.model, self.optimizer, self.bare["train"], self.config.data.batch_size, self.runs)
        )

    def run(self, config: Any | None = None) -> Any:
        from fusebench.engine.run import execute_run

        self.runs += 1
        return execute_run(config or self.config, self.folder / f"run{self.runs}", data=self.data)

    def fusebench_epoch(self, config: Any | None = None, validation: bool = False) -> Sample:
        """The run's training epoch (with ``validation``: and its all-pattern validation pass)."""
        timing = self.run(config).timing
        if validation:
            return Sample(
                float(timing["training_cpu"] + timing["validation_cpu"]),
                float(timing["training"] + timing["validation"]),
            )
        return Sample(float(timing["training_cpu"]), float(timing["training"]))

    def whole_run(self) -> Sample:
        return timed(self.run)


def _per_step(paired: Paired, steps: int) -> dict[str, float]:
    return {
        "bare_ms_per_step": 1000 * paired.median_a / steps,
        "extra_ms_per_step": 1000 * (paired.median_b - paired.median_a) / steps,
    }


def train_epoch_row(name: str, overrides: Sequence[str], threads: int, rounds: int) -> dict[str, Any]:
    """A fusebench training epoch (B) over a bare epoch (A) on the same data and model."""
    bench = Bench(run_config(name, overrides, threads))
    paired = abba(bench.bare_epoch, bench.fusebench_epoch, rounds)
    return {
        **paired.summary(),
        **_per_step(paired, bench.steps()),
        "steps": bench.steps(),
        "samples": len(bench.bare["train"]),
    }


def whole_run_row(threads: int, rounds: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A whole 1-epoch ``execute_run`` (train, all-pattern validation, test, files) over a bare epoch."""
    bench = Bench(run_config("demo.yaml", overrides, threads))
    paired = abba(bench.bare_epoch, bench.whole_run, rounds)
    timing = bench.run().timing
    parts = {key: timing[key] for key in ("training", "training_cpu", "validation", "test", "fit", "total")}
    return {**paired.summary(), "one_run_parts_seconds": parts, "samples": {s: len(bench.bare[s]) for s in bench.bare}}


def _evaluate_one_pattern(bench: Bench, batch_size: int) -> Callable[[], Sample]:
    from fusebench.data.loader import TensorLoader
    from fusebench.engine.evaluate import evaluate_patterns

    test = bench.data.test

    def measure() -> Sample:
        loader = TensorLoader(test.inputs, test.target, batch_size)
        return timed(lambda: evaluate_patterns(bench.model, loader, bench.data.modalities, [bench.data.modalities]))

    return measure


def _bare_test(bench: Bench, batch_size: int, split: str = "test") -> Callable[[], Sample]:
    return lambda: timed(lambda: test_pass(bench.model, bench.bare[split], batch_size))


def test_pass_row(threads: int, rounds: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """fusebench's test pass on the full pattern (B) over the bare ``no_grad`` pass (A)."""
    bench = Bench(run_config("demo.yaml", overrides, threads))
    size = bench.config.data.eval_batch_size
    paired = abba(_bare_test(bench, size), _evaluate_one_pattern(bench, size), rounds)
    return {**paired.summary(), "eval_batch_size": size, "samples": len(bench.bare["test"])}


def eval_batch_row(
    name: str, threads: int, rounds: int, sizes: Sequence[int] = (64, 128, 256, 512, 1024), samples: int = 2048
) -> dict[str, Any]:
    """Bare test-pass CPU microseconds per sample at each batch size, sizes in alternating order each round."""
    bench = Bench(
        run_config(name, [f"data.limit.test={samples}", "data.limit.train=256", "data.limit.validation=256"], threads)
    )
    measured: dict[int, list[Sample]] = {s: [] for s in sizes}
    _bare_test(bench, sizes[0])()  # warm-up
    for r in range(rounds):
        for size in list(sizes) if r % 2 == 0 else list(reversed(sizes)):
            measured[size].append(_bare_test(bench, size)())
    per_sample = {s: 1e6 * statistics.median(x.cpu for x in v) / samples for s, v in measured.items()}
    fastest = min(per_sample, key=per_sample.__getitem__)
    ratio = Paired(a=measured[128], b=measured[1024]).ratio if 1024 in measured and 128 in measured else None
    return {
        "us_per_sample": per_sample,
        "fastest": fastest,
        "ratio_1024_over_128": ratio,
        "rounds": rounds,
        "samples": samples,
        "widths": list(bench.config.model.encoders["audio"].widths),
    }


def deterministic_row(threads: int, rounds: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """A training epoch with ``experiment.deterministic`` on (B) against off (A)."""
    bench = Bench(run_config("demo.yaml", overrides, threads))
    off = with_overrides(bench.config, ["experiment.deterministic=false"])
    paired = abba(lambda: bench.fusebench_epoch(off), bench.fusebench_epoch, rounds)
    torch.use_deterministic_algorithms(False)
    return paired.summary()


def frozen_cache_row(threads: int, rounds: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Encoding every split once (B, ``cache_features``) over one uncached epoch with frozen encoders (A).

    The epoch is what a user waits for: training and the all-pattern validation pass.
    """
    from fusebench.engine.build import build_model
    from fusebench.engine.feature_cache import cache_features

    frozen = ["model.freeze.audio=true", "model.freeze.image=true"]
    bench = Bench(run_config("demo.yaml", [*overrides, *frozen], threads))
    uncached = with_overrides(bench.config, ["training.cache_frozen_features=false"])
    data = bench.data

    def encode() -> Sample:
        model = build_model(bench.config, data.input_shapes, data.task.output_size, data.modality_info)
        return timed(lambda: cache_features(model, data, bench.config.data.eval_batch_size))

    paired = abba(lambda: bench.fusebench_epoch(uncached, validation=True), encode, rounds)
    cached = bench.fusebench_epoch(validation=True)
    return {
        **paired.summary(),
        "cached_epoch_over_uncached": cached.cpu / paired.median_a,
        "samples": {s: len(bench.bare[s]) for s in bench.bare},
    }


def lightning_floor_row(threads: int, rounds: int, samples: int = 12800) -> dict[str, Any]:
    """Per-step framework milliseconds with a model so small the framework's own work dominates.

    A: the bare loop; B: fusebench (monitoring off); C: fusebench as shipped (monitoring on);
    D: the smallest LightningModule (automatic optimisation, nothing logged) in a bare Trainer.
    """
    import lightning as L

    from fusebench.data.loader import TensorLoader

    config = run_config(
        "demo.yaml",
        [f"model.encoders.{m}.widths={TINY_WIDTHS}" for m in ("audio", "image")]
        + [f"data.limit.train={samples}", "data.limit.validation=128", "data.limit.test=128"],
        threads,
    )
    bench = Bench(config)
    quiet = with_overrides(config, ["monitoring.enabled=false"])
    train = bench.data.train

    class Smallest(L.LightningModule):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(self.model(batch.inputs, batch.mask).logits, batch.target)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.Adam(self.model.parameters())

    class EpochClock(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            self.cpu, self.wall = time.process_time(), time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            self.sample = Sample(time.process_time() - self.cpu, time.perf_counter() - self.wall)

    def smallest() -> Sample:
        clock = EpochClock()
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=1,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            limit_val_batches=0,
            callbacks=[clock],
        )
        loader = TensorLoader(train.inputs, train.target, config.data.batch_size, shuffle=True)
        trainer.fit(Smallest(bench.model), train_dataloaders=loader)
        return clock.sample

    steps = bench.steps()
    rows = {
        "fusebench_monitoring_off": abba(bench.bare_epoch, lambda: bench.fusebench_epoch(quiet), rounds),
        "fusebench_as_shipped": abba(bench.bare_epoch, bench.fusebench_epoch, rounds),
        "smallest_lightning_module": abba(bench.bare_epoch, smallest, rounds),
    }
    return {name: {**_per_step(p, steps), **p.summary()} for name, p in rows.items()}
