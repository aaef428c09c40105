"""Mid fusion, "where to fuse": modalities join one transformer stream at chosen layers.

Follows "Where to fuse" (``../shared/papers/002_f1eed76e6f5c3665.txt``, section 2.2, Figures
9-11): the model "allows for the concatenation of different modalities at predetermined
layers", given by a fusion spec (the paper's ``fusion_spec = {0: ["text_title", "image"], 7:
["audio"], 8: ["text_description"]}``, written here modality -> layer, ``{text_title: 0,
image: 0, audio: 7, text_description: 8}``), each modality optionally pooled to its own
number of tokens (``pooled_modalities={"image": 16, "audio": 4}``; mean, max or attention
pooling, section 1.3.3). The modalities at layer 0 start the stream; a modality joining at
layer ``k`` is concatenated to the activations before block ``k`` (``k = num_layers``: after
the last block, so it meets the others only in the decoder). A decoder of
``decoder_layers`` blocks (T5's decoder, section 1.3.1; the decoder-size axis of section 3.2)
reads the stream with one query token and feeds the classifier.

Injection (``injection``):

- ``direct`` (the paper, the default): the joining modality's tokens go in as tokenised —
  by its tokeniser, or from a pre-trained, frozen and cached encoder (``EncoderTokenizer``;
  the paper's frozen ViT) — so fusing later only shortens the stream for the earlier
  blocks and is cheaper (section 3.2.5, Figure 17);
- ``side_blocks`` (fusebench's variant): the joining modality first runs through ``k`` blocks
  of its own, so a late fusion still encodes it as deeply as the stream, and fusing later
  costs *more*.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, cast

import torch
from torch import Tensor, nn

from fusebench.models.encoder_tokens import EncoderTokenizer
from fusebench.models.midfusion_cost import FusionCost, block_macs, decoder_block_macs
from fusebench.models.multimodal import ModelOutput
from fusebench.models.sequence import masked_mean, step_mask
from fusebench.models.tokens import PoolKind, TokenPool, check_heads, check_tokenizers, learned_embedding

__all__ = ["FusionCost", "Injection", "WhereToFuseModel", "block_macs", "check_fusion_spec", "decoder_block_macs"]

Injection = Literal["direct", "side_blocks"]


def check_fusion_spec(spec: Mapping[str, int], modalities: tuple[str, ...], num_layers: int) -> dict[str, int]:
    """``{modality: layer}`` checked: every modality once, layers in ``0..num_layers``, something at layer 0."""
    missing, unknown = sorted(set(modalities) - set(spec)), sorted(set(spec) - set(modalities))
    if missing or unknown:
        raise ValueError(
            f"Expected `fusion_spec` to give every modality {list(modalities)} a layer, got "
            f"{dict(spec)} (missing {missing}, unknown {unknown})."
        )
    bad = {m: k for m, k in spec.items() if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= num_layers}
    if bad:
        raise ValueError(
            f"Expected `fusion_spec` layers in 0..{num_layers} (0 = early, {num_layers} = late), got {bad}."
        )
    if 0 not in spec.values():
        raise ValueError(f"Expected at least one modality at layer 0 to start the stream, got {dict(spec)}.")
    return {m: int(spec[m]) for m in modalities}


class WhereToFuseModel(nn.Module):
    """A transformer stream that each modality joins at its ``fusion_spec`` layer, read by a decoder.

    A CLS token starts the stream and is never masked; it is the decoder's query. Absent
    modalities are removed from every attention with key padding masks; a modality with
    ``lengths`` (padded variable-length sequences) has its padding masked the same way (in
    the stream, its side blocks and its ``TokenPool``), so padding never changes an output.
    The returned ``embeddings`` are each modality's mean token where it is taken into the
    fusion: a stream-starting modality's after the blocks before the first other modality
    joins, a joining modality's as it joins (after pooling). They are computed whether or not
    the modality is present: auxiliary losses must use the mask.

    Args:
        tokenizers: modality -> tokeniser emitting ``[B, N_m, dim]`` (with ``num_tokens``, ``dim``).
        num_classes: width of the logits.
        fusion_spec: modality -> the layer it joins at (see :func:`check_fusion_spec`).
        dim: token width.
        num_layers: blocks in the stream (the encoder).
        heads: attention heads (must divide ``dim``).
        pool_kind: ``"mean"``, ``"max"`` or ``"attention"`` pooling.
        pooled_tokens: modality -> tokens it is pooled to (``1..N_m``); unlisted modalities are not pooled.
        injection: ``"direct"`` (the paper) or ``"side_blocks"`` (see the module docstring).
        decoder_layers: decoder blocks reading the stream (>= 1).
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout inside the blocks.
    """

    reruns_per_pattern = True

    def __init__(
        self,
        tokenizers: Mapping[str, nn.Module],
        num_classes: int,
        fusion_spec: Mapping[str, int],
        *,
        dim: int = 64,
        num_layers: int = 4,
        heads: int = 4,
        pool_kind: PoolKind = "mean",
        pooled_tokens: Mapping[str, int] | None = None,
        injection: Injection = "direct",
        decoder_layers: int = 1,
        ff_mult: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"Expected `num_layers` >= 1, got {num_layers}.")
        if decoder_layers < 1:
            raise ValueError(f"Expected `decoder_layers` >= 1, got {decoder_layers}.")
        if injection not in ("direct", "side_blocks"):
            raise ValueError(f"Expected `injection` in ['direct', 'side_blocks'], got `{injection}`.")
        check_heads(dim, heads)
        self.num_tokens = check_tokenizers(tokenizers, dim)
        self.modalities = tuple(sorted(tokenizers))
        self.join = check_fusion_spec(fusion_spec, self.modalities, num_layers)
        pooled = dict(pooled_tokens or {})
        unknown = sorted(set(pooled) - set(self.modalities))
        if unknown:
            raise ValueError(f"Expected `pooled_tokens` keys among {list(self.modalities)}, got {unknown}.")
        for m, k in pooled.items():
            if not 1 <= k <= self.num_tokens[m]:
                raise ValueError(f"Expected `pooled_tokens` in 1..{self.num_tokens[m]} (the tokens of `{m}`), got {k}.")
        self.pooled = pooled
        self.dim, self.ff_dim, self.num_layers, self.injection = dim, dim * ff_mult, num_layers, injection
        self.decoder_layers = decoder_layers
        self.tokens_in = {m: pooled.get(m, self.num_tokens[m]) for m in self.modalities}  # tokens m adds to the stream

        def block() -> nn.Module:
            return nn.TransformerEncoderLayer(
                dim, heads, dim * ff_mult, dropout, activation="gelu", batch_first=True, norm_first=True
            )

        self.tokenizers = nn.ModuleDict({m: tokenizers[m] for m in self.modalities})
        self.positions = nn.ParameterDict({m: learned_embedding(self.tokens_in[m], dim) for m in self.modalities})
        self.types = nn.ParameterDict({m: learned_embedding(dim) for m in self.modalities})
        self.cls = learned_embedding(1, 1, dim)
        self.blocks = nn.ModuleList([block() for _ in range(num_layers)])
        side = {m: k for m, k in self.join.items() if injection == "side_blocks" and k > 0}
        self.side_blocks = nn.ModuleDict({m: nn.ModuleList([block() for _ in range(k)]) for m, k in side.items()})
        self.side_positions = nn.ParameterDict({m: learned_embedding(self.num_tokens[m], dim) for m in side})
        self.pools = nn.ModuleDict({m: TokenPool(pool_kind, k, dim, heads) for m, k in pooled.items()})
        self.norm = nn.LayerNorm(dim)
        self.decoder = nn.ModuleList(
            [
                nn.TransformerDecoderLayer(
                    dim, heads, dim * ff_mult, dropout, activation="gelu", batch_first=True, norm_first=True
                )
                for _ in range(decoder_layers)
            ]
        )
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    @property
    def fusion_layer(self) -> int:
        """The first layer at which a modality joins the stream (0: all start it, early fusion)."""
        return min((k for k in self.join.values() if k > 0), default=0)

    @property
    def token_encoders(self) -> nn.ModuleDict:
        """modality -> encoder of the modalities whose tokens come from an encoder (for loading and freezing)."""
        return nn.ModuleDict({m: t.encoder for m, t in self.tokenizers.items() if isinstance(t, EncoderTokenizer)})

    def encoder_modules(self) -> nn.ModuleDict | None:
        """The encoders of ``encoder_tokens`` modalities (loaded, frozen by name); None when all are tokenised."""
        encoders = self.token_encoders
        return encoders if len(encoders) else None

    def embedding_dims(self) -> dict[str, int]:
        """Every modality's embedding is its mean token where it enters the fusion, ``dim`` wide."""
        return dict.fromkeys(self.modalities, self.dim)

    def tokens_per_layer(self) -> list[int]:
        """Stream length in each encoder block: CLS + the tokens of every modality joined by then."""
        return [1 + sum(n for m, n in self.tokens_in.items() if self.join[m] <= k) for k in range(self.num_layers)]

    def cost(self) -> FusionCost:
        """Per-sample token counts and multiply-accumulates of the encoder, side and decoder blocks."""
        main = tuple(self.tokens_per_layer())
        side = {m: (self.num_tokens[m],) * self.join[m] for m in self.side_blocks}
        memory = 1 + sum(self.tokens_in.values())
        return FusionCost(
            tokens_per_layer=main,
            side_tokens_per_layer=side,
            main_macs=sum(block_macs(n, self.dim, self.ff_dim) for n in main),
            side_macs=sum(block_macs(n, self.dim, self.ff_dim) for s in side.values() for n in s),
            decoder_macs=self.decoder_layers * decoder_block_macs(memory, self.dim, self.ff_dim),
        )

    def _enter(self, m: str, x: Tensor, absent: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Modality ``m``'s tokens as they join the stream, their key padding mask and their real-token mask."""
        tokens = self.tokenizers[m](x)  # [B, N_m, dim]
        if m in self.side_blocks:
            tokens = tokens + self.side_positions[m] + self.types[m]
            side_pad = None if valid is None else ~valid  # absence is not masked: a sample's m-tokens share it
            for block in cast(nn.ModuleList, self.side_blocks[m]):
                tokens = block(tokens, src_key_padding_mask=side_pad)
        if m in self.pools:
            tokens, valid = self.pools[m](tokens, valid), None  # [B, K, dim]; pooled tokens are never padding
        tokens = tokens + self.positions[m] + self.types[m]
        hidden = absent.unsqueeze(1).expand(-1, tokens.shape[1])  # [B, T]
        if valid is not None:
            hidden = hidden | ~valid
        return tokens, hidden, valid

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        if mask.dim() != 2 or mask.shape[1] != len(self.modalities):
            raise ValueError(
                f"Expected `mask` of shape [B, {len(self.modalities)}] (columns {self.modalities}), "
                f"got {tuple(mask.shape)}."
            )
        batch, lengths = mask.shape[0], lengths or {}
        absent = {m: ~mask[:, j] for j, m in enumerate(self.modalities)}  # m -> [B]
        valid = {m: step_mask(lengths[m], batch, self.num_tokens[m], mask.device) for m in sorted(lengths)}
        x, pad = self.cls.expand(batch, -1, -1), mask.new_zeros(batch, 1)  # [B, 1, dim], [B, 1]; CLS never masked
        embeddings: dict[str, Tensor] = {}
        spans: dict[str, tuple[int, int, Tensor | None]] = {}  # m -> its tokens' place in the stream, real tokens

        def record() -> None:  # mean token of each modality in the stream not recorded yet (masks: real tokens)
            for m, (start, end, real) in spans.items():
                if m not in embeddings:
                    part = x[:, start:end]
                    embeddings[m] = masked_mean(part, real) if real is not None else part.mean(dim=1)

        for k in range(self.num_layers + 1):
            joining = [m for m in self.modalities if self.join[m] == k]
            if joining and k > 0:
                record()  # the stream's modalities before the first join; each joining one as it joins
            for m in joining:
                tokens, hidden, real = self._enter(m, inputs[m], absent[m], valid.get(m))
                spans[m] = (x.shape[1], x.shape[1] + tokens.shape[1], real)
                x, pad = torch.cat([x, tokens], dim=1), torch.cat([pad, hidden], dim=1)
                if k > 0:
                    record()
            if k < self.num_layers:
                x = self.blocks[k](x, src_key_padding_mask=pad)
        record()  # everything at layer 0: after the last block
        memory = self.norm(x)  # [B, L, dim]
        query = memory[:, :1]  # [B, 1, dim], the CLS token
        for layer in self.decoder:
            query = layer(query, memory, memory_key_padding_mask=pad)
        logits = self.head(self.decoder_norm(query)[:, 0])  # [B, C]
        return ModelOutput(logits, {m: embeddings[m] for m in self.modalities})
