"""Every random stream of a run, derived in one place: a ``numpy.random.SeedSequence`` tree.

A stream is keyed by the run's seed, what it is for (:data:`SHUFFLE`, :data:`SAMPLE`,
:data:`DROPOUT`, :data:`WARMUP`) and then whatever names its place, outermost first (part, epoch,
step). So a part's batches and its dropout masks in an epoch are a function of these keys alone:
not of which worker holds the part, how many workers there are, or what ran before, which is
what lets a run resume, rescale or move parts between workers and still take the same steps.
"""

from __future__ import annotations

import numpy as np

#: Purposes: the order of a part's training seeds in an epoch; the kernel seeds of its batches;
#: torch's generator for a part's forward pass at one step (dropout); the cache's warm-up batches.
SHUFFLE, SAMPLE, DROPOUT, WARMUP = range(4)


def rng(seed: int, purpose: int, *keys: int) -> np.random.Generator:
    """The numpy generator of stream ``(seed, purpose, *keys)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, purpose, *keys]))


def torch_seed(seed: int, purpose: int, *keys: int) -> int:
    """A seed for ``torch.manual_seed`` (63 bits) from stream ``(seed, purpose, *keys)``."""
    # Shifted as a Python int: NumPy 1 has no uint64 >> int64 (NumPy 2 takes the 1 as a uint64).
    return int(np.random.SeedSequence([seed, purpose, *keys]).generate_state(1, np.uint64)[0]) >> 1
