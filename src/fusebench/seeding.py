"""The one seeding scheme of every generator a run draws from: ``(run seed, step, stream)``.

Each source of randomness that must be reproducible and recomputable — the loader's
per-epoch order, the per-epoch missing-modality masks, a strategy's per-step draws, a
seeded subset — draws from its own CPU generator seeded by the run seed, the epoch or step,
and a :class:`Stream` naming the source. ``numpy.random.SeedSequence`` mixes the three
integers, so stream ``a`` at step ``s`` never replays stream ``b`` at another step or seed,
as ``seed * K + step`` schemes can (``seed=0, step=K`` is ``seed=1, step=0`` there).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import torch


class Stream(IntEnum):
    """Which draw a generator is for; the value is part of the seed (never renumber one)."""

    MODALITY_DROPOUT = 1
    OGM_NOISE = 2
    BLENDING_HOLDOUT = 3
    MISSING_MASKS = 4
    LOADER_ORDER = 5
    TRAIN_SUBSET = 6


def seeded_generator(seed: int, step: int, stream: Stream | int) -> torch.Generator:
    """A CPU generator for ``(seed, step)``, independent per ``stream``.

    >>> a = torch.rand(2, generator=seeded_generator(0, 3, Stream.LOADER_ORDER))
    >>> b = torch.rand(2, generator=seeded_generator(0, 3, Stream.LOADER_ORDER))
    >>> bool(torch.equal(a, b)), bool(torch.equal(a, torch.rand(2, generator=seeded_generator(0, 3, Stream.OGM_NOISE))))
    (True, False)
    """
    state = np.random.SeedSequence([seed, step, int(stream)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
