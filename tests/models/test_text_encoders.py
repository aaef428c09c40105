"""The `embedding` encoder of token-id sequences: padding never changes an output."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from fusebench.models.encoder_specs import build_encoder_from, get_encoder
from fusebench.models.encoder_specs_media import EmbeddingOptions
from fusebench.models.text_encoders import TokenEncoder


def _batch(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([5, 1, 3, 7])
    ids = torch.randint(2, 50, (4, 7), generator=generator)
    ids[torch.arange(7) >= lengths.unsqueeze(1)] = 0
    return ids, lengths


@pytest.mark.parametrize("pool", ["mean", "gru"])
def test_padding_values_and_padded_length_never_change_the_output(pool: str) -> None:
    torch.manual_seed(0)
    encoder = TokenEncoder(vocab_size=50, embed_dim=8, out_dim=6, pool=pool, hidden=5).eval()  # type: ignore[arg-type]
    ids, lengths = _batch(torch.Generator().manual_seed(1))
    reference = encoder(ids, lengths)
    garbage = ids.clone()
    pad = torch.arange(7) >= lengths.unsqueeze(1)
    garbage[pad] = torch.randint(0, 50, (int(pad.sum()),), generator=torch.Generator().manual_seed(2))
    longer = torch.cat([garbage, torch.randint(0, 50, (4, 9))], dim=1)  # 9 more padded steps of anything
    torch.testing.assert_close(encoder(garbage, lengths), reference)
    torch.testing.assert_close(encoder(longer, lengths), reference)


def test_mean_pooling_is_the_mean_of_the_valid_word_vectors() -> None:
    torch.manual_seed(0)
    encoder = TokenEncoder(vocab_size=50, embed_dim=8, out_dim=6, pool="mean").eval()
    ids, lengths = _batch(torch.Generator().manual_seed(1))
    vectors = [encoder.embedding.weight[ids[b, : lengths[b]]].mean(dim=0) for b in range(4)]
    expected = F.linear(torch.stack(vectors), encoder.project.weight, encoder.project.bias)
    torch.testing.assert_close(encoder(ids, lengths), expected)


def test_gru_pooling_is_the_state_after_each_rows_last_word() -> None:
    torch.manual_seed(0)
    encoder = TokenEncoder(vocab_size=50, embed_dim=8, out_dim=6, pool="gru", hidden=5).eval()
    ids, lengths = _batch(torch.Generator().manual_seed(1))
    assert encoder.gru is not None
    rows = []
    for b in range(4):  # each sequence alone, unpadded
        _, h = encoder.gru(encoder.embedding(ids[b : b + 1, : lengths[b]]))
        rows.append(encoder.project(h[-1, 0]))
    torch.testing.assert_close(encoder(ids, lengths), torch.stack(rows))


def test_without_lengths_every_step_is_read() -> None:
    torch.manual_seed(0)
    encoder = TokenEncoder(vocab_size=50, embed_dim=8, out_dim=6).eval()
    ids = torch.randint(2, 50, (3, 4))
    torch.testing.assert_close(encoder(ids), encoder(ids, torch.full((3,), 4)))


def test_wrong_inputs_are_clear_errors() -> None:
    encoder = TokenEncoder(vocab_size=10, embed_dim=4, out_dim=3)
    with pytest.raises(TypeError, match=r"Expected token ids as an integer tensor.*`data.text: tokens`"):
        encoder(torch.zeros(2, 5))
    with pytest.raises(TypeError, match=r"integer tensor \[B, T\], got torch.uint8"):  # UTF-8 bytes are not ids
        encoder(torch.zeros(2, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"token ids in 0..9 .*got ids from 3 to 12.*`vocab_size`"):
        encoder(torch.tensor([[3, 12]]), torch.tensor([2]))


def test_registered_as_a_sequence_encoder_of_padded_text() -> None:
    entry = get_encoder("embedding")
    assert entry.sequences and not entry.frozen_by_default
    encoder = build_encoder_from(EmbeddingOptions(vocab_size=30, out_dim=12, pool="gru"), (9,))
    assert encoder.out_dim == 12
    with pytest.raises(ValueError, match=r"Expected padded sequences \[T\] per sample"):
        build_encoder_from(EmbeddingOptions(), (9, 300))
