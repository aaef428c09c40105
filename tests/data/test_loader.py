"""TensorLoader: epochs as seeded permutations of whole tensors, with masks and lengths kept aligned."""

from __future__ import annotations

import pytest
import torch

from fusebench.data.amputation import MCARAmputer
from fusebench.data.loader import TensorLoader, subset_indices

N = 50


def _loader(**kwargs: object) -> TensorLoader:
    rows = torch.arange(N)
    inputs = {"image": rows.float().view(N, 1, 1).expand(N, 2, 2).clone(), "audio": rows.float().view(N, 1)}
    return TensorLoader(inputs, rows.clone(), 16, **kwargs)  # type: ignore[arg-type]


def _epoch(loader: TensorLoader) -> list[torch.Tensor]:
    return [batch.target for batch in loader]


def test_an_epoch_visits_every_row_once_in_batches_of_the_batch_size() -> None:
    loader = _loader(shuffle=True, seed=3)
    batches = _epoch(loader)
    assert len(loader) == len(batches) == 4 and [len(b) for b in batches] == [16, 16, 16, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(N))


def test_inputs_target_and_lengths_of_a_batch_are_the_same_rows() -> None:
    lengths = {"audio": torch.arange(N) % 7 + 1}
    loader = _loader(shuffle=True, seed=0, lengths=lengths)
    for batch in loader:
        assert torch.equal(batch.inputs["audio"][:, 0].long(), batch.target)
        assert torch.equal(batch.inputs["image"][:, 0, 0].long(), batch.target)
        assert batch.lengths is not None and torch.equal(batch.lengths["audio"], batch.target % 7 + 1)
        assert batch.modalities == ("audio", "image")


def test_the_order_is_seeded_per_epoch_and_unshuffled_loaders_keep_row_order() -> None:
    first, again = _loader(shuffle=True, seed=5), _loader(shuffle=True, seed=5)
    epochs = [torch.cat(_epoch(first)) for _ in range(2)]
    assert torch.equal(epochs[0], torch.cat(_epoch(again)))  # same seed, same epoch: same order
    assert not torch.equal(epochs[0], epochs[1])  # a new permutation each epoch
    assert not torch.equal(epochs[0], torch.cat(_epoch(_loader(shuffle=True, seed=6))))
    assert torch.cat(_epoch(_loader())).tolist() == list(range(N))


def test_train_time_masks_reach_the_batches_and_are_kept_for_the_run_record() -> None:
    loader = _loader(masks=MCARAmputer(["audio", "image"], {"audio": 0.5}, seed=0))
    masks = torch.cat([batch.mask for batch in loader])
    assert loader.last_masks is not None and torch.equal(masks, loader.last_masks)
    assert masks.shape == (N, 2) and bool(masks.any(dim=1).all())  # never every modality missing
    assert bool(masks[:, 1].all()) and 0 < int((~masks[:, 0]).sum()) < N  # only audio goes missing


def test_inconsistent_sizes_and_unknown_length_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="Expected every modality to have 50 samples like the target"):
        TensorLoader({"audio": torch.zeros(49, 1)}, torch.zeros(N), 8)
    with pytest.raises(ValueError, match=r"Expected `lengths` keys among \['audio'\], got \['text'\]"):
        TensorLoader({"audio": torch.zeros(N, 1)}, torch.zeros(N), 8, lengths={"text": torch.ones(N)})


def test_subset_indices_are_a_seeded_sorted_subset_of_the_rounded_size() -> None:
    chosen = subset_indices(200, 0.25, seed=1)
    assert len(chosen) == 50 and torch.equal(chosen, torch.sort(chosen).values) and len(set(chosen.tolist())) == 50
    assert torch.equal(chosen, subset_indices(200, 0.25, seed=1))
    assert not torch.equal(chosen, subset_indices(200, 0.25, seed=2))
    assert torch.equal(subset_indices(7, 1.0, seed=0), torch.arange(7)) and len(subset_indices(7, 0.01, seed=0)) == 1
