"""Compute cost of the where-to-fuse model: multiply-accumulates per sample of its transformer blocks.

"Given the quadratic time complexity of transformers in relation to input length", fusing
later is cheaper: "late fusion effectively shortens the input sequence for the majority of
the transformer's layers" (``../shared/papers/002_f1eed76e6f5c3665.txt``, section 3.2.5,
Figure 17). These counts make that trend exact and machine-independent.
"""

from __future__ import annotations

from typing import NamedTuple


class FusionCost(NamedTuple):
    """Where the compute of a ``WhereToFuseModel`` goes, per sample.

    Attributes:
        tokens_per_layer: sequence length in each encoder block (CLS + the modalities joined so far).
        side_tokens_per_layer: modality -> sequence length in each of its own blocks (only with
            ``injection="side_blocks"``; empty tuples otherwise).
        main_macs: multiply-accumulates of the encoder blocks.
        side_macs: multiply-accumulates of the modalities' own blocks.
        decoder_macs: multiply-accumulates of the decoder blocks (one query over the encoder output).
    """

    tokens_per_layer: tuple[int, ...]
    side_tokens_per_layer: dict[str, tuple[int, ...]]
    main_macs: int
    side_macs: int
    decoder_macs: int = 0

    @property
    def total_macs(self) -> int:
        return self.main_macs + self.side_macs + self.decoder_macs


def block_macs(tokens: int, dim: int, ff_dim: int) -> int:
    """Multiply-accumulates of one transformer encoder block over ``tokens`` tokens.

    Q, K, V and output projections ``4 L d^2``, attention scores and the weighted sum of
    values ``2 L^2 d``, feed-forward ``2 L d f``. Norms, softmax and biases are ignored.

    >>> block_macs(tokens=10, dim=4, ff_dim=8)
    2080
    """
    return 4 * tokens * dim * dim + 2 * tokens * tokens * dim + 2 * tokens * dim * ff_dim


def decoder_block_macs(memory: int, dim: int, ff_dim: int, queries: int = 1) -> int:
    """Multiply-accumulates of one transformer decoder block (self-attention, cross-attention, feed-forward).

    The T5 decoder block (002 section 1.3.1) for ``queries`` query tokens over ``memory``
    encoder tokens: self-attention ``4 Q d^2 + 2 Q^2 d``; cross-attention Q and output
    projections ``2 Q d^2``, K and V of the memory ``2 M d^2``, scores and weighted sum
    ``2 Q M d``; feed-forward ``2 Q d f``.

    >>> decoder_block_macs(memory=10, dim=4, ff_dim=8)
    568
    """
    self_attention = 4 * queries * dim * dim + 2 * queries * queries * dim
    cross = 2 * queries * dim * dim + 2 * memory * dim * dim + 2 * queries * memory * dim
    return self_attention + cross + 2 * queries * dim * ff_dim
