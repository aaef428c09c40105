"""Tokenisers, token pooling and the where-to-fuse model over its whole fusion_layer range."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from tests._helpers.fusion_cases import (
    INPUT_SHAPES,
    NUM_CLASSES,
    THREE_MODALITIES,
    TWO_MODALITIES,
    build_model,
    fusion_params,
    make_inputs,
    mask_for,
    mixed_mask,
    pattern_params,
    perturb_absent,
    save_and_reload,
    single_thread,
    train_losses,
)
from torch.testing import assert_close

from fusebench.data.patterns import all_patterns
from fusebench.models.midfusion import WhereToFuseModel, block_macs, decoder_block_macs
from fusebench.models.registry import build_tokenizer, build_tokenizers, build_where_to_fuse
from fusebench.models.tokens import (
    ImagePatchTokenizer,
    SequenceTokenizer,
    SpectrogramTokenizer,
    TokenPool,
)

SHAPES = {m: INPUT_SHAPES[m] for m in TWO_MODALITIES}
NUM_LAYERS = 3


@pytest.fixture(autouse=True)
def _seed() -> Iterator[None]:
    torch.manual_seed(0)
    with single_thread():
        yield


def _model(fusion_layer: int, primary: str = "image", **kwargs) -> WhereToFuseModel:
    options = {"dim": 16, "num_layers": NUM_LAYERS, "heads": 2, "pooled_tokens": 2, "dropout": 0.0, **kwargs}
    return build_where_to_fuse(SHAPES, NUM_CLASSES, primary=primary, fusion_layer=fusion_layer, **options)


@pytest.mark.parametrize(("patch", "tokens"), [((4, 4), 49), ((2, 2), 196), (7, 16)])
def test_image_patches(patch, tokens: int) -> None:
    tokenizer = ImagePatchTokenizer((28, 28), patch, dim=8)
    out = tokenizer(torch.randn(3, 1, 28, 28))
    assert tokenizer.num_tokens == tokens and out.shape == (3, tokens, 8)
    # Token 1 is the patch right of the top-left one: a linear map of those pixels alone.
    x = torch.randn(1, 1, 28, 28)
    p = tokenizer.patch
    expected = tokenizer.proj.weight.flatten(1) @ x[0, :, : p[0], p[1] : 2 * p[1]].flatten()
    assert_close(tokenizer(x)[0, 1], expected + tokenizer.proj.bias)


def test_image_patch_must_divide_the_image() -> None:
    with pytest.raises(ValueError, match=r"`patch` \(5, 5\) to divide `image_size` \(28, 28\)"):
        ImagePatchTokenizer((28, 28), 5)
    with pytest.raises(ValueError, match=r"images of size \(28, 28\), got \(32, 32\)"):
        ImagePatchTokenizer((28, 28), 4)(torch.randn(1, 1, 32, 32))


def test_spectrogram_frames_are_one_token_per_time_step() -> None:
    tokenizer = SpectrogramTokenizer(40, 32, "frames", dim=8)
    x = torch.randn(2, 1, 40, 32)
    out = tokenizer(x)
    assert tokenizer.num_tokens == 32 and out.shape == (2, 32, 8)
    assert_close(out[1, 5], tokenizer.proj(x[1, 0, :, 5]))


def test_spectrogram_patches_pad_the_edges() -> None:
    tokenizer = SpectrogramTokenizer(40, 30, "patches", dim=8, patch=(8, 8))
    assert tokenizer.num_tokens == 5 * 4
    assert tokenizer(torch.randn(2, 1, 40, 30)).shape == (2, 20, 8)
    with pytest.raises(ValueError, match=r"shape \(1, n_mels, frames\) = \(1, 40, 30\), got \(2, 40, 30\)"):
        tokenizer(torch.randn(2, 2, 40, 30))
    with pytest.raises(ValueError, match=r"`mode` in \['frames', 'patches'\], got `bins`"):
        SpectrogramTokenizer(40, 30, "bins")


def test_sequence_tokenizer_steps_and_vectors() -> None:
    assert SequenceTokenizer(20, 8, length=12)(torch.randn(2, 12, 20)).shape == (2, 12, 8)
    assert SequenceTokenizer(20, 8, length=1)(torch.randn(2, 20)).shape == (2, 1, 8)
    with pytest.raises(ValueError, match="sequences of length 12, got 10"):
        SequenceTokenizer(20, 8, length=12)(torch.randn(2, 10, 20))


def test_mean_and_max_pooling_over_contiguous_groups() -> None:
    tokens = torch.randn(2, 196, 4)
    rows = TokenPool("mean", 14, dim=4)(tokens)
    assert_close(rows, tokens.view(2, 14, 14, 4).mean(dim=2))
    assert_close(TokenPool("mean", 1, dim=4)(rows), tokens.mean(dim=1, keepdim=True))
    assert_close(TokenPool("max", 14, dim=4)(tokens), tokens.view(2, 14, 14, 4).amax(dim=2))


def test_attention_pooling_is_learned_queries_over_the_tokens() -> None:
    pool = TokenPool("attention", 3, dim=8, heads=2)
    tokens = torch.randn(2, 10, 8)
    out = pool(tokens)
    assert out.shape == (2, 3, 8)
    assert_close(pool(tokens[:, torch.randperm(10)]), out)  # a set function of the tokens
    with pytest.raises(ValueError, match=r"pool `kind` in \['mean', 'max', 'attention'\]"):
        TokenPool("median", 1, 8)


@pytest.mark.parametrize(
    ("shape", "modality", "kind", "tokens"),
    [
        pytest.param((1, 28, 28), "image", ImagePatchTokenizer, 49, id="image"),
        pytest.param((1, 40, 32), "audio", SpectrogramTokenizer, 32, id="audio-spectrogram"),
        pytest.param((1, 28, 28), "depth", ImagePatchTokenizer, 49, id="other-3d-is-image"),
        pytest.param((50, 74), "audio", SequenceTokenizer, 50, id="audio-sequence"),
        pytest.param((300,), "text", SequenceTokenizer, 1, id="vector"),
    ],
)
def test_tokenizer_is_chosen_from_shape_then_name(shape, modality: str, kind, tokens: int) -> None:
    tokenizer = build_tokenizer(modality, shape, dim=8)
    assert isinstance(tokenizer, kind) and tokenizer.num_tokens == tokens


def test_tokenizer_kind_override_and_errors() -> None:
    tokenizers = build_tokenizers(SHAPES, 8, tokenizer_kinds={"audio": "image"})
    assert isinstance(tokenizers["audio"], ImagePatchTokenizer)
    with pytest.raises(ValueError, match=r"`tokenizer_kinds` keys among \['audio', 'image'\]"):
        build_tokenizers(SHAPES, 8, tokenizer_kinds={"video": "image"})
    with pytest.raises(ValueError, match=r"per-sample shape of 1 to 3 dims .* got \(1, 2, 3, 4\)"):
        build_tokenizer("video", (1, 2, 3, 4))


@pytest.mark.parametrize("pattern", pattern_params(TWO_MODALITIES))
@pytest.mark.parametrize("primary", TWO_MODALITIES)
@pytest.mark.parametrize("fusion_layer", range(NUM_LAYERS + 1))
def test_every_fusion_layer_ignores_absent_modalities(
    fusion_layer: int, primary: str, pattern: tuple[str, ...]
) -> None:
    model = _model(fusion_layer, primary).eval()
    inputs = make_inputs(TWO_MODALITIES, 3)
    mask = mask_for(pattern, TWO_MODALITIES, 3)
    out = model(inputs, mask)
    assert out.logits.shape == (3, NUM_CLASSES) and torch.isfinite(out.logits).all()
    assert_close(model(perturb_absent(inputs, mask, TWO_MODALITIES), mask).logits, out.logits)


@pytest.mark.parametrize("pool_kind", ["mean", "max", "attention"])
def test_other_modalities_reach_the_prediction_even_when_fused_last(pool_kind: str) -> None:
    model = _model(NUM_LAYERS, pool_kind=pool_kind).eval()
    inputs, mask = make_inputs(TWO_MODALITIES, 2), mask_for(TWO_MODALITIES, TWO_MODALITIES, 2)
    changed = {**inputs, "audio": torch.randn_like(inputs["audio"])}
    assert not torch.allclose(model(changed, mask).logits, model(inputs, mask).logits)


@pytest.mark.parametrize("fusion_layer", [-1, NUM_LAYERS + 1])
def test_fusion_layer_out_of_range_raises(fusion_layer: int) -> None:
    with pytest.raises(ValueError, match=rf"`fusion_layer` in 0\.\.{NUM_LAYERS} .* got {fusion_layer}"):
        _model(fusion_layer)


def test_other_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError, match=r"`primary` in \['audio', 'image'\], got `text`"):
        _model(1, primary="text")
    with pytest.raises(ValueError, match=r"`pooled_tokens` in 1\.\.32 \(the tokens of `audio`\)"):
        _model(1, pooled_tokens=33)


def test_tokens_per_layer_and_cost_of_direct_injection_by_hand() -> None:
    model = _model(1)  # image starts the stream: CLS + 49 patches; audio joins before block 1 as 2 pooled tokens
    cost = model.cost()
    assert model.tokens_per_layer() == [50, 52, 52] == list(cost.tokens_per_layer)
    assert cost.side_tokens_per_layer == {} and cost.side_macs == 0  # 002 Sec. 2.2: tokens join as tokenised
    assert cost.main_macs == block_macs(50, 16, 32) + 2 * block_macs(52, 16, 32)
    # one decoder block, one query over the 52-token memory: self 4d^2 + 2d, cross 2d^2 + 2Md^2 + 2Md, ff 2df
    assert (
        cost.decoder_macs
        == decoder_block_macs(52, 16, 32)
        == 4 * 256 + 32 + 2 * 256 + 2 * 52 * 256 + 2 * 52 * 16 + 2 * 16 * 32
    )
    assert cost.total_macs == cost.main_macs + cost.decoder_macs
    assert block_macs(10, 4, 8) == 4 * 10 * 16 + 2 * 100 * 4 + 2 * 10 * 4 * 8


def test_side_blocks_variant_runs_the_joining_modality_through_its_own_blocks() -> None:
    model = _model(2, injection="side_blocks")  # audio: 32 frames through 2 own blocks, then pooled to 2
    cost = model.cost()
    assert model.tokens_per_layer() == [50, 50, 52]
    assert cost.side_tokens_per_layer == {"audio": (32, 32)}
    assert cost.side_macs == 2 * block_macs(32, 16, 32) and len(model.side_blocks["audio"]) == 2
    assert cost.total_macs == cost.main_macs + cost.side_macs + cost.decoder_macs


def test_direct_injection_makes_later_fusion_cheaper_and_side_blocks_dearer() -> None:
    """002 Sec. 3.2.5 / Fig. 17: later fusion shortens the sequence of more blocks; the variant inverts it."""
    for pooled in (2, None):  # 2 pooled audio tokens, or all 32 (no pooling, as the paper's 196 image tokens)
        direct = [_model(f, pooled_tokens=pooled).cost().total_macs for f in range(NUM_LAYERS + 1)]
        assert direct == sorted(direct, reverse=True) and len(set(direct)) == len(direct), direct
    side = [_model(f, injection="side_blocks").cost().total_macs for f in range(NUM_LAYERS + 1)]  # 32 -> 2 tokens
    assert side == sorted(side) and len(set(side)) == len(side), side
    by_pooled = [_model(1, pooled_tokens=k).cost().main_macs for k in (1, 2, 8)]
    assert by_pooled == sorted(by_pooled) and len(set(by_pooled)) == 3


def test_a_joining_modality_enters_exactly_as_tokenised_and_pooled() -> None:
    model = _model(2, pool_kind="mean").eval()
    inputs, mask = make_inputs(TWO_MODALITIES, 3), mask_for(TWO_MODALITIES, TWO_MODALITIES, 3)
    out = model(inputs, mask)
    tokens = model.tokenizers["audio"](inputs["audio"])  # [3, 32, 16] frames
    by_hand = torch.stack([tokens[:, :16].mean(1), tokens[:, 16:].mean(1)], dim=1)  # 2 contiguous groups
    joined = by_hand + model.positions["audio"] + model.types["audio"]
    assert_close(out.embeddings["audio"], joined.mean(dim=1))


def test_fusion_spec_over_three_modalities_and_per_modality_pooling() -> None:
    shapes = {m: INPUT_SHAPES[m] for m in THREE_MODALITIES}  # audio 32 frames, image 49 patches, text 12 steps
    spec = {"text": 0, "image": 1, "audio": 3}  # the paper's {0: [text], 1: [image], 3: [audio]}
    model = build_where_to_fuse(
        shapes,
        NUM_CLASSES,
        fusion_spec=spec,
        pooled_tokens={"image": 7, "audio": 4},
        dim=16,
        num_layers=NUM_LAYERS,
        heads=2,
        dropout=0.0,
    )
    assert model.pooled == {"image": 7, "audio": 4} and model.tokens_in == {"audio": 4, "image": 7, "text": 12}
    assert model.tokens_per_layer() == [1 + 12, 1 + 12 + 7, 1 + 12 + 7]  # audio joins after the last block
    cost = model.cost()
    assert cost.decoder_macs == decoder_block_macs(1 + 12 + 7 + 4, 16, 32)
    inputs = make_inputs(THREE_MODALITIES, 3)
    for pattern in all_patterns(THREE_MODALITIES):
        mask = mask_for(pattern, THREE_MODALITIES, 3)
        out = model.eval()(inputs, mask)
        assert out.logits.shape == (3, NUM_CLASSES) and set(out.embeddings) == set(THREE_MODALITIES)
        assert_close(model(perturb_absent(inputs, mask, THREE_MODALITIES), mask).logits, out.logits)
    changed = {**inputs, "audio": torch.randn_like(inputs["audio"])}  # joined last: reaches the decoder
    full = mask_for(THREE_MODALITIES, THREE_MODALITIES, 3)
    assert not torch.allclose(model(changed, full).logits, model(inputs, full).logits)


def test_decoder_layers_add_decoder_blocks() -> None:
    small, large = _model(1, decoder_layers=1), _model(1, decoder_layers=3)
    assert len(small.decoder) == 1 and len(large.decoder) == 3
    assert large.cost().decoder_macs == 3 * small.cost().decoder_macs
    assert large.cost().main_macs == small.cost().main_macs


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"fusion_spec": {"image": 0, "audio": 1}}, "exactly one of `primary`", id="both"),
        pytest.param({"primary": None, "fusion_spec": {"image": 0}}, r"missing \['audio'\]", id="missing"),
        pytest.param({"primary": None, "fusion_spec": {"image": 1, "audio": 2}}, "at layer 0", id="no-start"),
        pytest.param({"primary": None, "fusion_spec": {"image": 0, "audio": 9}}, r"layers in 0\.\.3", id="range"),
        pytest.param(
            {"primary": None, "fusion_spec": {"image": 0, "audio": 1}, "fusion_layer": 1},
            "goes with `primary`",
            id="layer-with-spec",
        ),
        pytest.param({"pooled_tokens": {"text": 2}}, r"`pooled_tokens` keys among", id="pool-key"),
        pytest.param({"decoder_layers": 0}, r"`decoder_layers` >= 1", id="decoder"),
        pytest.param({"encoder_tokens": ["audio"]}, "no encoder was built", id="encoder-tokens"),
    ],
)
def test_fusion_spec_mistakes_are_named(kwargs: dict, match: str) -> None:
    options = {"primary": "image", "dim": 16, "num_layers": NUM_LAYERS, "heads": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        build_where_to_fuse(SHAPES, NUM_CLASSES, **options)


@pytest.mark.parametrize("family_kind", fusion_params("mid"))
def test_safetensors_round_trip_gives_identical_outputs(family_kind: tuple[str, str], tmp_path) -> None:
    model = build_model(*family_kind).eval()
    torch.manual_seed(1)
    reloaded = save_and_reload(model, build_model(*family_kind), tmp_path / "model.safetensors")
    inputs, mask = make_inputs(TWO_MODALITIES, 5), mixed_mask(TWO_MODALITIES, 5)
    assert_close(reloaded.eval()(inputs, mask).logits, model(inputs, mask).logits, rtol=0, atol=0)


@pytest.mark.parametrize("family_kind", fusion_params("mid"))
def test_training_reduces_the_loss(family_kind: tuple[str, str]) -> None:
    model = build_model(*family_kind)
    assert model.reruns_per_pattern is True
    losses = train_losses(model)
    assert sum(losses[-5:]) / 5 < 0.85 * sum(losses[:5]) / 5, losses
