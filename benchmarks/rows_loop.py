"""Rows measured in this process against the bare loop: training epochs, the whole run, test passes.

Every fusebench number here comes from ``execute_run`` on data loaded once (so the data load
is not in it) with ``experiment.threads`` as the bench's, the progress bar off (the bench's
output is not a terminal) and everything else as the shipped config sets it, monitoring
included. The training-epoch seconds are the run's own ``timing.json: training``.
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
from harness import ROOT, Paired, abba

TINY_WIDTHS = [4]


def run_config(name: str, overrides: Sequence[str], threads: int) -> Any:
    from fusebench.config import load_config

    return load_config(ROOT / "configs" / "avdigits" / name,
                       [f"experiment.threads={threads}", "logging.progress_bar=false", "training.epochs=1",
                        *overrides])


class Bench:
    """The data of one config loaded once, its bare copy, and the two ways to train an epoch on it."""

    def __init__(self, config: Any) -> None:
        from fusebench.engine.datasets import run_splits

        self.config = config
        self.data = run_splits(config)
        self.bare = {name: bare_split(self.data.split(name).inputs, self.data.split(name).target)
                     for name in ("train", "validation", "test")}
        widths = list(config.model.encoders["audio"].widths)
        self.model = late_fusion_cnn(widths, self.data.input_shapes)
        self._check_same_model()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.training.optimizer.lr)
        self.folder = Path(tempfile.mkdtemp(prefix="fusebench-bench-"))
        self.runs = 0

    def _check_same_model(self) -> None:
        from fusebench.engine.build import build_model

        built = build_model(self.config, self.data.input_shapes, self.data.task.output_size)
        mine = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in built.state_dict().items()}
        if mine != theirs:
            raise RuntimeError(f"The bare model differs from fusebench's: {sorted(set(mine) ^ set(theirs))}")

    def steps(self) -> int:
        return -(-len(self.bare["train"]) // self.config.data.batch_size)

    def bare_epoch(self) -> float:
        start = time.perf_counter()
        train_epoch(self.model, self.optimizer, self.bare["train"], self.config.data.batch_size, self.runs)
        self.runs += 1
        return time.perf_counter() - start

    def run(self, config: Any | None = None) -> Any:
        from fusebench.engine.run import execute_run

        self.runs += 1
        return execute_run(config or self.config, self.folder / f"run{self.runs}", data=self.data)

    def fusebench_epoch(self, config: Any | None = None) -> float:
        return float(self.run(config).timing["training"])

    def whole_run(self) -> float:
        start = time.perf_counter()
        self.run()
        return time.perf_counter() - start


def train_epoch_row(name: str, overrides: Sequence[str], threads: int, rounds: int) -> dict[str, Any]:
    bench = Bench(run_config(name, overrides, threads))
    paired = abba(bench.bare_epoch, bench.fusebench_epoch, rounds)
    steps = bench.steps()
    return {**paired.summary(), "steps": steps, "bare_ms_per_step": 1000 * paired.median_a / steps,
            "extra_ms_per_step": 1000 * (paired.median_b - paired.median_a) / steps,
            "samples": len(bench.bare["train"])}


def whole_run_row(threads: int, rounds: int) -> dict[str, Any]:
    bench = Bench(run_config("demo.yaml", [], threads))
    paired = abba(bench.bare_epoch, bench.whole_run, rounds)
    result = bench.run()
    timing = result.timing
    parts = {key: timing[key] for key in ("training", "validation", "test", "fit", "total")}
    return {**paired.summary(), "one_run_parts_seconds": parts,
            "samples": {s: len(bench.bare[s]) for s in bench.bare}}


def _evaluate_one_pattern(bench: Bench, batch_size: int) -> Callable[[], float]:
    from fusebench.data.loader import TensorLoader
    from fusebench.engine.evaluate import evaluate_patterns

    test = bench.data.test

    def measure() -> float:
        loader = TensorLoader(test.inputs, test.target, batch_size)
        start = time.perf_counter()
        evaluate_patterns(bench.model, loader, bench.data.modalities, [bench.data.modalities])
        return time.perf_counter() - start

    return measure


def _bare_test(bench: Bench, batch_size: int, split: str = "test") -> Callable[[], float]:
    def measure() -> float:
        start = time.perf_counter()
        test_pass(bench.model, bench.bare[split], batch_size)
        return time.perf_counter() - start

    return measure


def test_pass_row(threads: int, rounds: int) -> dict[str, Any]:
    bench = Bench(run_config("demo.yaml", [], threads))
    size = bench.config.data.eval_batch_size
    paired = abba(_bare_test(bench, size), _evaluate_one_pattern(bench, size), rounds)
    return {**paired.summary(), "eval_batch_size": size, "samples": len(bench.bare["test"])}


def eval_batch_row(name: str, threads: int, rounds: int, sizes: Sequence[int] = (64, 128, 256, 512, 1024),
                   samples: int = 2048) -> dict[str, Any]:
    """Bare test-pass seconds per sample at each batch size, sizes in rotating order each round."""
    bench = Bench(run_config(name, [f"data.limit.test={samples}", "data.limit.train=256",
                                    "data.limit.validation=256"], threads))
    seconds: dict[int, list[float]] = {s: [] for s in sizes}
    _bare_test(bench, sizes[0])()  # warm-up
    for r in range(rounds):
        order = list(sizes) if r % 2 == 0 else list(reversed(sizes))
        for size in order:
            seconds[size].append(_bare_test(bench, size)())
    per_sample = {s: 1e6 * statistics.median(v) / samples for s, v in seconds.items()}
    fastest = min(per_sample, key=per_sample.__getitem__)
    ratio_1024 = Paired(a=seconds[128], b=seconds[1024]).ratio if 1024 in seconds and 128 in seconds else None
    return {"us_per_sample": per_sample, "fastest": fastest, "ratio_1024_over_128": ratio_1024,
            "rounds": rounds, "samples": samples}


def deterministic_row(threads: int, rounds: int) -> dict[str, Any]:
    """Training-epoch seconds with ``experiment.deterministic`` on (B) against off (A)."""
    bench = Bench(run_config("demo.yaml", [], threads))
    from fusebench.config import apply_overrides, validate_config

    raw = bench.config.model_dump(mode="json")
    off = validate_config(apply_overrides(raw, ["experiment.deterministic=false"]))
    paired = abba(lambda: bench.fusebench_epoch(off), bench.fusebench_epoch, rounds)
    torch.use_deterministic_algorithms(True)
    return paired.summary()


def lightning_floor_row(threads: int, rounds: int) -> dict[str, Any]:
    """Per-step framework milliseconds with a model so small the framework's own work dominates.

    A: the bare loop; B: fusebench (monitoring off); C: fusebench as shipped (monitoring on);
    D: the smallest LightningModule (automatic optimisation, nothing logged) in a bare Trainer.
    """
    import lightning as L

    config = run_config("demo.yaml", [f"model.encoders.{m}.widths={TINY_WIDTHS}" for m in ("audio", "image")]
                        + ["data.limit.train=25600", "data.limit.validation=128", "data.limit.test=128"], threads)
    bench = Bench(config)
    from fusebench.config import apply_overrides, validate_config
    from fusebench.data.loader import TensorLoader

    quiet = validate_config(apply_overrides(config.model_dump(mode="json"), ["monitoring.enabled=false"]))
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
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            self.seconds = time.perf_counter() - self.start

    def smallest() -> float:
        clock = EpochClock()
        trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_progress_bar=False,
                            enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0,
                            callbacks=[clock])
        loader = TensorLoader(train.inputs, train.target, config.data.batch_size, shuffle=True)
        trainer.fit(Smallest(bench.model), train_dataloaders=loader)
        return clock.seconds

    steps = bench.steps()
    rows = {"fusebench_monitoring_off": abba(bench.bare_epoch, lambda: bench.fusebench_epoch(quiet), rounds),
            "fusebench_as_shipped": abba(bench.bare_epoch, bench.fusebench_epoch, rounds),
            "smallest_lightning_module": abba(bench.bare_epoch, smallest, rounds)}
    return {name: {"extra_ms_per_step": 1000 * (p.median_b - p.median_a) / steps,
                   "bare_ms_per_step": 1000 * p.median_a / steps, **p.summary()} for name, p in rows.items()}

