"""Mid fusion, "where to fuse": inject the other modalities into a primary-modality
transformer at a chosen block.

``fusion_layer`` sweeps the whole range: 0 joins every modality before the first block
(early), ``num_layers`` after the last one (late); in between, the first ``fusion_layer``
blocks are unimodal and the rest run over the joint sequence. The same question as the
fusion-layer sweeps of Nagrani et al. (2021, "Attention Bottlenecks for Multimodal Fusion").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn

from fusebench.models.multimodal import ModelOutput
from fusebench.models.sequence import masked_mean, step_mask
from fusebench.models.tokens import (
    PoolKind,
    TokenPool,
    check_heads,
    check_tokenizers,
    learned_embedding,
    transformer_block,
)


class FusionCost(NamedTuple):
    """Where the compute of a ``WhereToFuseModel`` goes, per sample.

    Attributes:
        tokens_per_layer: sequence length in each main block (CLS + primary, then + pooled).
        side_tokens_per_layer: other modality -> sequence length in each of its own blocks.
        main_macs: multiply-accumulates of the main blocks.
        side_macs: multiply-accumulates of the other modalities' own blocks.
    """

    tokens_per_layer: tuple[int, ...]
    side_tokens_per_layer: dict[str, tuple[int, ...]]
    main_macs: int
    side_macs: int

    @property
    def total_macs(self) -> int:
        return self.main_macs + self.side_macs


def block_macs(tokens: int, dim: int, ff_dim: int) -> int:
    """Multiply-accumulates of one transformer block over ``tokens`` tokens.

    Q, K, V and output projections ``4 L d^2``, attention scores and the weighted sum of
    values ``2 L^2 d``, feed-forward ``2 L d f``. Norms, softmax and biases are ignored.

    >>> block_macs(tokens=10, dim=4, ff_dim=8)
    2080
    """
    return 4 * tokens * dim * dim + 2 * tokens * tokens * dim + 2 * tokens * dim * ff_dim


class WhereToFuseModel(nn.Module):
    """A transformer over ``primary``'s tokens that the other modalities join at ``fusion_layer``.

    Before fusion every other modality runs through its own ``fusion_layer`` blocks (so a
    late fusion still encodes it as deeply as the primary), is pooled to ``pooled_tokens``
    tokens by a ``TokenPool``, gets a modality-type and a pooled-position embedding and is
    appended to the sequence; the remaining ``num_layers - fusion_layer`` blocks run over the
    joint sequence. A CLS token, never masked, then reads the joint sequence once more through
    a cross-attention readout and is classified. The readout is the same for every
    ``fusion_layer`` and is what lets the other modalities reach the prediction at
    ``fusion_layer == num_layers``.

    Absent modalities are removed from every attention with key padding masks, the primary
    included (its tokens are then masked and CLS carries the prediction alone). A modality
    with ``lengths`` (padded variable-length sequences) has its padding steps masked the same
    way in the main stack, in its own blocks and in its ``TokenPool``, so padding values
    never change an output. The returned
    ``embeddings`` are each modality's mean token where it enters the fusion (the primary's
    after its unimodal blocks, the others' after their own blocks and pooling), computed
    whether or not the modality is present: auxiliary losses must use the mask.

    Cost: each joint block costs ``block_macs(1 + N_primary + pooled_tokens * (M - 1))``, so
    more joint layers (a smaller ``fusion_layer``) and more pooled tokens cost more in the
    main stack, while the other modalities' own stacks shrink as ``fusion_layer`` falls; see
    ``cost()``.

    Args:
        primary: the modality whose token sequence carries the model.
        tokenizers: modality -> tokeniser emitting ``[B, N_m, dim]`` (with ``num_tokens``, ``dim``).
        num_classes: width of the logits.
        dim: token width.
        num_layers: transformer blocks in the main stack.
        heads: attention heads (must divide ``dim``).
        fusion_layer: index of the first joint block, in ``0..num_layers``.
        pool_kind: ``"mean"``, ``"max"`` or ``"attention"`` pooling of the other modalities.
        pooled_tokens: tokens each other modality contributes to the joint sequence.
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout inside the blocks.

    Raises:
        ValueError: for an unknown ``primary``, ``fusion_layer`` outside ``0..num_layers``, or
            ``pooled_tokens`` outside ``1..N_m`` of some other modality.
    """

    reruns_per_pattern = True

    def __init__(
        self,
        primary: str,
        tokenizers: Mapping[str, nn.Module],
        num_classes: int,
        dim: int = 64,
        num_layers: int = 4,
        heads: int = 4,
        fusion_layer: int = 2,
        pool_kind: PoolKind = "mean",
        pooled_tokens: int = 1,
        ff_mult: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if primary not in tokenizers:
            raise ValueError(f"Expected `primary` in {sorted(tokenizers)}, got `{primary}`.")
        if num_layers < 1:
            raise ValueError(f"Expected `num_layers` >= 1, got {num_layers}.")
        if not 0 <= fusion_layer <= num_layers:
            raise ValueError(
                f"Expected `fusion_layer` in 0..{num_layers} (0 = early, {num_layers} = late), got {fusion_layer}."
            )
        check_heads(dim, heads)
        self.num_tokens = check_tokenizers(tokenizers, dim)
        self.modalities = tuple(sorted(tokenizers))
        self.primary = primary
        self.others = tuple(m for m in self.modalities if m != primary)
        for m in self.others:
            if not 1 <= pooled_tokens <= self.num_tokens[m]:
                raise ValueError(
                    f"Expected `pooled_tokens` in 1..{self.num_tokens[m]} (the tokens of `{m}`), got {pooled_tokens}."
                )
        self.dim, self.ff_dim, self.num_layers = dim, dim * ff_mult, num_layers
        self.fusion_layer, self.pooled_tokens = fusion_layer, pooled_tokens

        def stack(depth: int) -> nn.ModuleList:
            return nn.ModuleList([transformer_block(dim, heads, ff_mult, dropout) for _ in range(depth)])

        self.tokenizers = nn.ModuleDict({m: tokenizers[m] for m in self.modalities})
        self.positions = nn.ParameterDict({m: learned_embedding(n, dim) for m, n in self.num_tokens.items()})
        self.types = nn.ParameterDict({m: learned_embedding(dim) for m in self.modalities})
        self.cls = learned_embedding(1, 1, dim)
        self.blocks = stack(num_layers)
        self.side_blocks = nn.ModuleDict({m: stack(fusion_layer) for m in self.others})
        self.pools = nn.ModuleDict({m: TokenPool(pool_kind, pooled_tokens, dim, heads) for m in self.others})
        self.pooled_positions = nn.ParameterDict({m: learned_embedding(pooled_tokens, dim) for m in self.others})
        self.norm = nn.LayerNorm(dim)
        self.readout = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.readout_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def encoder_modules(self) -> None:
        """None: the model tokenises its inputs; no per-modality encoder can be loaded or frozen."""
        return None

    def embedding_dims(self) -> dict[str, int]:
        """Every modality's embedding is its mean token where it enters the fusion, ``dim`` wide."""
        return dict.fromkeys(self.modalities, self.dim)

    def tokens_per_layer(self) -> list[int]:
        """Sequence length in each main block: ``1 + N_primary`` before fusion, then + pooled."""
        unimodal = 1 + self.num_tokens[self.primary]
        joint = unimodal + self.pooled_tokens * len(self.others)
        return [unimodal] * self.fusion_layer + [joint] * (self.num_layers - self.fusion_layer)

    def cost(self) -> FusionCost:
        """Per-sample token counts and multiply-accumulates of the transformer blocks."""
        main = tuple(self.tokens_per_layer())
        side = {m: (self.num_tokens[m],) * self.fusion_layer for m in self.others}
        return FusionCost(
            tokens_per_layer=main,
            side_tokens_per_layer=side,
            main_macs=sum(block_macs(n, self.dim, self.ff_dim) for n in main),
            side_macs=sum(block_macs(n, self.dim, self.ff_dim) for s in side.values() for n in s),
        )

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        if mask.dim() != 2 or mask.shape[1] != len(self.modalities):
            raise ValueError(
                f"Expected `mask` of shape [B, {len(self.modalities)}] (columns "
                f"{self.modalities}), got {tuple(mask.shape)}."
            )
        batch, p, lengths = mask.shape[0], self.primary, lengths or {}
        absent = {m: ~mask[:, j] for j, m in enumerate(self.modalities)}  # m -> [B]
        # m -> [B, N_m], True for real steps; only modalities with lengths have padding steps
        valid = {m: step_mask(lengths[m], batch, self.num_tokens[m], mask.device) for m in sorted(lengths)}
        tokens = self.tokenizers[p](inputs[p]) + self.positions[p] + self.types[p]  # [B, N_p, dim]
        x = torch.cat([self.cls.expand(batch, -1, -1), tokens], dim=1)  # [B, 1 + N_p, dim]
        hidden = absent[p].unsqueeze(1).expand(-1, self.num_tokens[p])  # [B, N_p]
        if p in valid:
            hidden = hidden | ~valid[p]
        pad = torch.cat([mask.new_zeros(batch, 1), hidden], dim=1)  # [B, 1 + N_p]; True = ignored, never CLS
        for block in self.blocks[: self.fusion_layer]:
            x = block(x, src_key_padding_mask=pad)
        embeddings = {p: masked_mean(x[:, 1:], valid[p]) if p in valid else x[:, 1:].mean(dim=1)}  # [B, dim]
        joined, joined_pad = [x], [pad]
        for m in self.others:
            side = self.tokenizers[m](inputs[m]) + self.positions[m] + self.types[m]  # [B, N_m, d]
            side_pad = ~valid[m] if m in valid else None  # absence is not masked: a sample's m-tokens share it
            for block in self.side_blocks[m].children():
                side = block(side, src_key_padding_mask=side_pad)
            pooled = self.pools[m](side, valid.get(m))  # [B, K, dim], real steps only
            embeddings[m] = pooled.mean(dim=1)  # [B, dim]
            joined.append(pooled + self.pooled_positions[m] + self.types[m])
            joined_pad.append(absent[m].unsqueeze(1).expand(-1, self.pooled_tokens))  # [B, K]
        x, pad = torch.cat(joined, dim=1), torch.cat(joined_pad, dim=1)  # [B, L, dim], [B, L]
        for block in self.blocks[self.fusion_layer :]:
            x = block(x, src_key_padding_mask=pad)
        x = self.norm(x)
        cls = x[:, :1]  # [B, 1, dim]
        read, _ = self.readout(cls, x, x, key_padding_mask=pad, need_weights=False)  # [B, 1, dim]
        logits = self.head(self.readout_norm(cls + read)[:, 0])  # [B, C]
        return ModelOutput(logits, embeddings)
