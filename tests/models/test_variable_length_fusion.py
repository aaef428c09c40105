"""Where-to-fuse mid fusion and token early fusion on padded variable-length sequences.

Padding steps must never change an output: the same batch with random junk instead of
zeros after each sequence's length gives identical logits and embeddings, under every
modality pattern, every pooling kind and the whole ``fusion_layer`` range.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from fusebench.data.patterns import all_patterns
from fusebench.models.registry import build_token_early_fusion, build_where_to_fuse
from fusebench.models.tokens import TokenPool

#: MOSI-like feature sequences (MMSA aligned widths, shorter steps).
SHAPES = {"audio": (20, 5), "text": (12, 30), "vision": (16, 20)}
MODALITIES = tuple(sorted(SHAPES))
PATTERNS = [tuple(p) for p in all_patterns(MODALITIES)]
BATCH = 2 * len(PATTERNS)


def _batch(junk: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    g = torch.Generator().manual_seed(3)
    lengths = {m: torch.randint(1, s[0] + 1, (BATCH,), generator=g) for m, s in SHAPES.items()}
    for m, s in SHAPES.items():
        lengths[m][0] = s[0]  # one full-length sequence
        lengths[m][1] = 1  # and a single-step one
    inputs = {}
    for m, s in SHAPES.items():
        x = torch.randn(BATCH, *s, generator=g)
        after = torch.arange(s[0])[None, :, None] >= lengths[m][:, None, None]
        fill = torch.randn(x.shape, generator=torch.Generator().manual_seed(9)) * 50 if junk else torch.zeros(())
        inputs[m] = torch.where(after, fill, x)
    return inputs, lengths


def _mixed_mask() -> Tensor:
    """Every pattern twice, as ``[B, 3]`` presence columns in MODALITIES order."""
    rows = [[m in p for m in MODALITIES] for p in PATTERNS for _ in range(2)]
    return torch.tensor(rows, dtype=torch.bool)


def _same(model: torch.nn.Module, mask: Tensor) -> None:
    (clean, lengths), (junk, _) = _batch(junk=False), _batch(junk=True)
    with torch.no_grad():
        a, b = model(clean, mask, lengths), model(junk, mask, lengths)
    assert torch.equal(a.logits, b.logits)
    assert a.embeddings.keys() == b.embeddings.keys()
    assert all(torch.equal(a.embeddings[m], b.embeddings[m]) for m in a.embeddings)
    with torch.no_grad():  # the padding does matter once the model is not told the lengths
        assert not torch.equal(model(clean, mask).logits, model(junk, mask).logits)


@pytest.mark.parametrize(("pool_kind", "pooled"), [("mean", 1), ("mean", 3), ("max", 2), ("attention", 2)])
@pytest.mark.parametrize("fusion_layer", [0, 1, 2])
@pytest.mark.parametrize("primary", MODALITIES)
def test_where_to_fuse_padding_never_changes_outputs(
    primary: str, fusion_layer: int, pool_kind: str, pooled: int
) -> None:
    torch.manual_seed(0)
    model = build_where_to_fuse(
        SHAPES,
        1,
        primary=primary,
        dim=16,
        num_layers=2,
        heads=2,
        fusion_layer=fusion_layer,
        pool_kind=pool_kind,
        pooled_tokens=pooled,
        dropout=0.0,
    ).eval()
    _same(model, _mixed_mask())


@pytest.mark.parametrize("injection", ["direct", "side_blocks"])
@pytest.mark.parametrize("fusion_layer", [0, 1, 2])
def test_unpooled_joining_sequences_keep_their_padding_masked(fusion_layer: int, injection: str) -> None:
    torch.manual_seed(0)
    model = build_where_to_fuse(
        SHAPES,
        1,
        primary="text",
        dim=16,
        num_layers=2,
        heads=2,
        fusion_layer=fusion_layer,
        pooled_tokens=None,
        injection=injection,
        dropout=0.0,
    ).eval()
    _same(model, _mixed_mask())


@pytest.mark.parametrize("missing", ["mask", "zero", "learned"])
def test_token_early_fusion_padding_never_changes_outputs(missing: str) -> None:
    torch.manual_seed(0)
    model = build_token_early_fusion(SHAPES, 3, dim=16, depth=2, heads=2, dropout=0.0, missing=missing).eval()
    _same(model, _mixed_mask())


def test_where_to_fuse_lengths_out_of_range_are_errors() -> None:
    model = build_where_to_fuse(SHAPES, 1, primary="text", dim=16, num_layers=2, heads=2, fusion_layer=1)
    inputs, lengths = _batch(junk=False)
    lengths["audio"][2] = 21
    with pytest.raises(ValueError, match=r"Expected sequence lengths in 1..20, got values from 1 to 21"):
        model(inputs, _mixed_mask(), lengths)


@pytest.mark.parametrize("kind", ["mean", "max", "attention"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_token_pool_over_all_tokens_matches_plain_pooling(kind: str, k: int) -> None:
    torch.manual_seed(0)
    pool = TokenPool(kind, k, 16, 4).eval()  # type: ignore[arg-type]
    tokens = torch.randn(4, 9, 16)
    with torch.no_grad():
        torch.testing.assert_close(pool(tokens, torch.ones(4, 9, dtype=torch.bool)), pool(tokens), rtol=1e-6, atol=1e-6)


def test_token_pool_groups_real_tokens_as_adaptive_pooling_would() -> None:
    # 5 real tokens of 8 into 2 groups: floor(0*5/2)..ceil(1*5/2) = 0..2 and floor(5/2)..ceil(10/2) = 2..4
    tokens = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 99.0, -99.0, 7.0]).view(1, 8, 1)
    valid = torch.arange(8).view(1, 8) < 5
    assert TokenPool("mean", 2, 1, 1)(tokens, valid).flatten().tolist() == [2.0, 4.0]
    assert TokenPool("max", 2, 1, 1)(tokens, valid).flatten().tolist() == [3.0, 5.0]
    # one real token feeds every group
    assert TokenPool("mean", 3, 1, 1)(tokens, torch.arange(8).view(1, 8) < 1).flatten().tolist() == [1.0] * 3
