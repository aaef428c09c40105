from __future__ import annotations

import pytest
import torch

from fusebench.data.patterns import all_patterns, mask_to_pattern_index, parse_pattern, pattern_mask, pattern_name


def test_all_patterns_counts_and_order() -> None:
    assert all_patterns(["image", "audio"]) == [("audio", "image"), ("audio",), ("image",)]
    assert len(all_patterns(["audio", "image", "text"])) == 7
    assert all_patterns(["a", "b", "c"])[0] == ("a", "b", "c")


def test_names_use_full_modality_names_even_when_initials_clash() -> None:
    patterns = [pattern_name(p) for p in all_patterns(["speech", "sound"])]
    assert patterns == ["sound+speech", "sound", "speech"]
    assert parse_pattern("speech+sound", ["sound", "speech"]) == ("sound", "speech")


@pytest.mark.parametrize("bad", ["", "video", "audio+audio", "audio+video"])
def test_parse_pattern_rejects_unknown(bad: str) -> None:
    with pytest.raises(ValueError, match="Expected a pattern"):
        parse_pattern(bad, ["audio", "image"])


def test_mask_to_pattern_index_round_trip() -> None:
    modalities = ("audio", "image", "text")
    for index, pattern in enumerate(all_patterns(modalities)):
        mask = pattern_mask(pattern, modalities, 4)
        assert mask_to_pattern_index(mask, modalities).tolist() == [index] * 4


def test_all_missing_sample_is_rejected() -> None:
    with pytest.raises(ValueError, match="every modality missing"):
        mask_to_pattern_index(torch.tensor([[True, False], [False, False]]), ("audio", "image"))
