"""TensorLoader: DDP shards, float16 storage computed at float32, pinned batches only where asked."""

from __future__ import annotations

import pytest
import torch

from fusebench.data.amputation import MCARAmputer
from fusebench.data.loader import TensorLoader, as_compute, compute_dtype


def _data(n: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    rows = torch.arange(n, dtype=torch.float32)
    return {"audio": rows[:, None].repeat(1, 3), "image": -rows[:, None]}, torch.arange(n) % 10


@pytest.mark.parametrize(("n", "batch", "world"), [(256, 64, 2), (250, 64, 2), (129, 64, 2), (100, 32, 3)])
def test_batch_shards_of_every_process_make_up_the_one_process_batches(n: int, batch: int, world: int) -> None:
    inputs, target = _data(n)
    masks = MCARAmputer(["audio", "image"], {"audio": 0.4}, seed=3)
    single = list(TensorLoader(inputs, target, batch, shuffle=True, seed=5, masks=masks))
    shards = [
        list(TensorLoader(inputs, target, batch, shuffle=True, seed=5, masks=masks, shard=(r, world)))
        for r in range(world)
    ]
    steps = len(shards[0])
    assert all(len(s) == steps for s in shards)  # every process takes the same number of steps
    merged = n % batch != 0 and n % batch < world  # a last batch smaller than the world joins the one before
    assert steps == len(single) - int(merged)
    for i in range(steps):
        assert min(len(s[i].target) for s in shards) >= 1
        if i < steps - 1 or not merged:  # global batch i is one process's batch i, cut in contiguous parts
            for field in ("target", "mask"):
                assert torch.equal(torch.cat([getattr(s[i], field) for s in shards]), getattr(single[i], field))
            for name in ("audio", "image"):
                assert torch.equal(torch.cat([s[i].inputs[name] for s in shards]), single[i].inputs[name])
    every = torch.cat([torch.cat([s[i].target for s in shards]) for i in range(steps)])
    assert torch.equal(every, torch.cat([b.target for b in single]))  # each sample once per epoch


def test_row_shards_are_contiguous_blocks_in_order() -> None:
    inputs, target = _data(101)
    parts = [TensorLoader(inputs, target, 32, shard=(r, 2), shard_by="rows") for r in range(2)]
    rows = [torch.cat([b.inputs["image"] for b in p]).flatten().neg().long() for p in parts]
    assert rows[0].tolist() == list(range(51)) and rows[1].tolist() == list(range(51, 101))
    assert [p.num_samples for p in parts] == [51, 50]


def test_float16_storage_is_batched_as_float32_and_other_dtypes_stay() -> None:
    inputs = {"audio": torch.rand(10, 4).half(), "text": torch.arange(20).reshape(10, 2)}
    batch = next(iter(TensorLoader(inputs, torch.zeros(10, dtype=torch.long), 4)))
    assert batch.inputs["audio"].dtype == torch.float32 and batch.inputs["text"].dtype == torch.long
    assert torch.equal(batch.inputs["audio"], inputs["audio"][:4].float())
    assert compute_dtype(torch.bfloat16) == torch.float32 and compute_dtype(torch.float64) == torch.float64
    x = torch.ones(3)
    assert as_compute(x) is x  # no copy at float32


def test_bad_shard_is_a_clear_error() -> None:
    inputs, target = _data(10)
    with pytest.raises(ValueError, match="rank < world_size"):
        TensorLoader(inputs, target, 4, shard=(2, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs CUDA")
def test_pinned_batches_on_cuda() -> None:  # pragma: no cover - GPU machines only
    inputs, target = _data(10)
    batch = next(iter(TensorLoader(inputs, target, 4, pin_memory=True)))
    assert batch.inputs["audio"].is_pinned() and batch.mask.is_pinned()
