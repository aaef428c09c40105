"""Image files as tensors: decoded with Pillow, resized and centre-cropped, kept as ``uint8``.

Pillow comes with matplotlib (a core dependency) and is named in the ``mmimdb`` extra.
Pixels stay ``uint8`` (0-255, ``[3, H, W]``): 25,959 posters at 224 x 224 take 3.9 GB,
four times less than float32; image encoders read ``uint8`` input as ``x / 255``
(:func:`fusebench.models.pixels.as_float_pixels`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """``uint8 [3, H, W]`` of the image at ``path``: RGB, scaled so it covers ``size`` = (H, W), centre-cropped.

    Scaling to cover and cropping the centre keeps the aspect ratio (no stretching), the
    convention of Arevalo's ``resize_and_crop_image`` for the MM-IMDB posters.

    Raises:
        FileNotFoundError: if the file is missing.
        ValueError: if Pillow cannot decode it.
    """
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"Expected the image file `{path}`, which does not exist.")
    height, width = size
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"`{path}`: expected a decodable image (JPEG), got an unreadable file ({error}).") from None
    scale = max(height / image.height, width / image.width)
    scaled = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(scaled, Image.Resampling.BILINEAR)
    left, top = (scaled[0] - width) // 2, (scaled[1] - height) // 2
    image = image.crop((left, top, left + width, top + height))
    pixels: np.ndarray = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()  # [H, W, 3] -> [3, H, W]
    return pixels
