"""Early fusion: modalities are joined before any joint representation is learned.

Unlike late fusion, the fused network sees which modalities are present, so evaluating
every modality pattern means one full forward pass per pattern (``reruns_per_pattern``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from fusebench.models.encoding import encode_present, encoder_width
from fusebench.models.multimodal import ModelOutput
from fusebench.models.sequence import masked_mean, step_mask
from fusebench.models.tokens import (
    check_heads,
    check_tokenizers,
    learned_embedding,
    transformer_block,
)

FeatureMissing = Literal["zero", "learned"]
TokenMissing = Literal["mask", "zero", "learned"]


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Expected `{name}` in {list(allowed)}, got `{value}`.")


def _check_mask(mask: Tensor, modalities: tuple[str, ...]) -> None:
    if mask.dim() != 2 or mask.shape[1] != len(modalities):
        raise ValueError(
            f"Expected `mask` of shape [B, {len(modalities)}] (columns {modalities}), got {tuple(mask.shape)}."
        )


class ResidualTanhProjector(nn.Module):
    """The projector of "Early Fusion with Contrastive Learning" (003_*.txt, Sec. 3.2, "Projection").

    ``h = Linear(x)``; ``out = h + Dropout(Tanh(h))``: "a linear layer followed by a Tanh
    activation. A dropout layer is then added ... combining the output of the dropout layer
    with the initial projection via a residual connection".

    Args:
        in_dim: width of the enhanced modality's features.
        out_dim: width of the projection (the anchors' width, for the contrastive loss).
        dropout: dropout probability on the Tanh branch.

    >>> projector = ResidualTanhProjector(2, 2, dropout=0.0)
    >>> projector(torch.zeros(1, 2)).shape
    torch.Size([1, 2])
    """

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1 or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"Expected `in_dim`, `out_dim` >= 1 and `dropout` in [0, 1), got {in_dim}, {out_dim}, {dropout}."
            )
        self.linear = nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        h = self.linear(x)  # [B, out_dim] the initial projection
        out: Tensor = h + self.dropout(torch.tanh(h))
        return out


class FeatureEarlyFusionModel(nn.Module):
    """Per-modality feature extractors, concatenated, then a small joint classifier.

    The lightweight early-fusion design of "Early Fusion with Contrastive Learning"
    (003_*.txt, Sec. 3.1): the extractors' outputs are concatenated and fed to two
    Linear-BatchNorm-ReLU blocks and a final Linear. An absent modality's features become
    zeros (``missing="zero"``) or a learned per-modality vector (``missing="learned"``).

    ``projectors`` names the modalities the paper *enhances* (Sec. 3.2): their features pass
    through a ``ResidualTanhProjector`` before the concatenation, so the classifier sees the
    enhanced features (the paper's ``A^CL``); a contrastive loss
    (``training.strategy.contrastive``) trains the projector to align them with an anchor
    modality. Absent features are replaced after the projection, so an absent modality
    contributes exactly the replacement.

    Extractors only run on the rows where their modality is present, so an absent input
    can never reach the model, not even through BatchNorm batch statistics in training.

    Args:
        extractors: modality -> module ``[B, ...] -> [B, out_dim]`` with an ``out_dim``.
        num_classes: width of the logits.
        hidden_dim: width of both classifier blocks.
        dropout: dropout after each classifier block.
        missing: what an absent modality's features become.
        projectors: modalities whose features are projected (enhanced).
        projector_dim: output width of every projector; ``None`` keeps each modality's width.
        projector_dropout: dropout inside the projectors.
    """

    reruns_per_pattern = True

    def __init__(
        self,
        extractors: Mapping[str, nn.Module],
        num_classes: int,
        hidden_dim: int = 256,
        dropout: float = 0.2,
        missing: FeatureMissing = "zero",
        projectors: Sequence[str] = (),
        projector_dim: int | None = None,
        projector_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        _check_choice("missing", missing, get_args(FeatureMissing))
        if not extractors:
            raise ValueError("Expected `extractors` with at least one modality, got none.")
        self.modalities = tuple(sorted(extractors))
        unknown = sorted(set(projectors) - set(self.modalities))
        if unknown:
            raise ValueError(f"Expected `projectors` among the modalities {list(self.modalities)}, got {unknown}.")
        self.feature_dims = {m: encoder_width(extractors[m], m) for m in self.modalities}
        self.extractors = nn.ModuleDict({m: extractors[m] for m in self.modalities})
        self.projectors = nn.ModuleDict(
            {
                m: ResidualTanhProjector(self.feature_dims[m], projector_dim or self.feature_dims[m], projector_dropout)
                for m in sorted(set(projectors))
            }
        )
        #: width of each modality's part of the classifier input (after any projector)
        self.fused_dims = {m: (projector_dim or d) if m in self.projectors else d for m, d in self.feature_dims.items()}
        self.missing = missing
        self.missing_features = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(d)) for m, d in self.fused_dims.items()} if missing == "learned" else {}
        )
        width = sum(self.fused_dims.values())
        blocks: list[nn.Module] = []
        for block_in in (width, hidden_dim):
            blocks += [
                nn.Linear(block_in, hidden_dim),
                nn.BatchNorm1d(hidden_dim),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
        self.classifier = nn.Sequential(*blocks, nn.Linear(hidden_dim, num_classes))

    def encoder_modules(self) -> nn.ModuleDict:
        return self.extractors

    def embedding_dims(self) -> dict[str, int]:
        return dict(self.feature_dims)

    def encode(
        self, inputs: Mapping[str, Tensor], mask: Tensor | None = None, lengths: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """modality -> ``[B, D_m]``; with ``mask``, absent rows are zeros and never computed."""
        if mask is not None:
            _check_mask(mask, self.modalities)
        return encode_present(self.extractors, self.modalities, inputs, mask, lengths)

    def enhance(self, modality: str, features: Tensor) -> Tensor:
        """``features`` of ``modality`` through its projector (unchanged for a modality without one)."""
        return self.projectors[modality](features) if modality in self.projectors else features

    def fuse(self, features: Mapping[str, Tensor], mask: Tensor) -> Tensor:
        """Project the enhanced modalities, replace absent features, concatenate and classify: ``[B, C]``."""
        _check_mask(mask, self.modalities)
        parts = []
        for j, m in enumerate(self.modalities):
            fill = self.missing_features[m] if self.missing == "learned" else 0.0
            parts.append(torch.where(mask[:, j : j + 1], self.enhance(m, features[m]), fill))  # [B, D'_m]
        out: Tensor = self.classifier(torch.cat(parts, dim=1))  # [B, C]
        return out

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        features = self.encode(inputs, mask, lengths)
        return ModelOutput(self.fuse(features, mask), features)


class TokenEarlyFusionModel(nn.Module):
    """One transformer over the concatenated token sequences of every modality.

    Each modality's tokens get a positional and a modality-type embedding; a CLS token
    (never masked) is prepended and its final state is classified. ``missing`` decides what
    an absent modality becomes:

    - ``"mask"`` (default): its tokens are removed from attention with
      ``src_key_padding_mask``, so the model computes exactly as if they were not there;
    - ``"zero"``: its *input* is replaced by zeros and tokenised as usual;
    - ``"learned"``: each of its tokens is replaced by a learned per-modality input token
      (positions and type embedding are still added).

    The returned ``embeddings`` are each modality's mean tokeniser output ``[B, dim]`` (of the
    zeroed input under ``"zero"``, before any token replacement otherwise); auxiliary and
    contrastive losses that read them must use the mask.

    Args:
        tokenizers: modality -> tokeniser ``[B, ...] -> [B, N_m, dim]`` with ``num_tokens`` and
            ``dim`` (see ``fusebench.models.tokens``).
        num_classes: width of the logits.
        dim: token width; every tokeniser must produce it.
        depth: number of transformer blocks.
        heads: attention heads (must divide ``dim``).
        ff_mult: feed-forward width as a multiple of ``dim``.
        dropout: dropout inside the blocks.
        missing: ``"mask"``, ``"zero"`` or ``"learned"`` (see above).
    """

    reruns_per_pattern = True

    def __init__(
        self,
        tokenizers: Mapping[str, nn.Module],
        num_classes: int,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
        missing: TokenMissing = "mask",
    ) -> None:
        super().__init__()
        _check_choice("missing", missing, get_args(TokenMissing))
        check_heads(dim, heads)
        self.modalities = tuple(sorted(tokenizers))
        self.num_tokens = check_tokenizers(tokenizers, dim)
        self.tokenizers = nn.ModuleDict({m: tokenizers[m] for m in self.modalities})
        self.positions = nn.ParameterDict({m: learned_embedding(n, dim) for m, n in self.num_tokens.items()})
        self.types = nn.ParameterDict({m: learned_embedding(dim) for m in self.modalities})
        self.cls = learned_embedding(1, 1, dim)
        self.missing = missing
        learned = missing == "learned"
        self.missing_tokens = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(dim)) for m in self.modalities} if learned else {}
        )
        self.blocks = nn.ModuleList([transformer_block(dim, heads, ff_mult, dropout) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.dim = dim

    def encoder_modules(self) -> None:
        """None: the model tokenises its inputs; no per-modality encoder can be loaded or frozen."""
        return None

    def embedding_dims(self) -> dict[str, int]:
        """Every modality's embedding is its mean token, ``dim`` wide."""
        return dict.fromkeys(self.modalities, self.dim)

    def sequence_length(self) -> int:
        """Tokens per block: CLS plus every modality's tokens."""
        return 1 + sum(self.num_tokens.values())

    def forward(
        self, inputs: Mapping[str, Tensor], mask: Tensor, lengths: Mapping[str, Tensor] | None = None
    ) -> ModelOutput:
        """Logits ``[B, C]``; a modality with ``lengths`` has its padding steps masked out of attention."""
        _check_mask(mask, self.modalities)
        lengths = lengths or {}
        batch = mask.shape[0]
        pieces = [self.cls.expand(batch, -1, -1)]  # [B, 1, dim]
        padding = [mask.new_zeros(batch, 1)]  # True = ignored by attention; CLS never is
        embeddings: dict[str, Tensor] = {}
        for j, m in enumerate(self.modalities):
            present, x = mask[:, j], inputs[m]
            if self.missing == "zero":
                x = torch.where(present.view(-1, *[1] * (x.dim() - 1)), x, 0.0)
            tokens = self.tokenizers[m](x)  # [B, N_m, dim]
            valid = step_mask(lengths.get(m), batch, self.num_tokens[m], tokens.device)  # [B, N_m]
            embeddings[m] = masked_mean(tokens, valid)  # [B, dim]
            if self.missing == "learned":
                tokens = torch.where(present.view(-1, 1, 1), tokens, self.missing_tokens[m])
            pieces.append(tokens + self.positions[m] + self.types[m])
            hidden = ~present if self.missing == "mask" else torch.zeros_like(present)
            padding.append(hidden.unsqueeze(1).expand(-1, self.num_tokens[m]) | ~valid)  # [B, N_m]
        x = torch.cat(pieces, dim=1)  # [B, 1 + sum N_m, dim]
        pad = torch.cat(padding, dim=1)  # [B, 1 + sum N_m]
        for block in self.blocks:
            x = block(x, src_key_padding_mask=pad)
        return ModelOutput(self.head(self.norm(x[:, 0])), embeddings)
