"""Image input conventions shared by image encoders."""

from __future__ import annotations

import torch
from torch import Tensor


def as_float_pixels(x: Tensor) -> Tensor:
    """``uint8`` pixels (0-255, as image readers keep them to save memory) as float ``x / 255``; floats unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.get_default_dtype()) / 255.0
    return x
