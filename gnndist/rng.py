"""splitmix64: the random stream of gnndist's numba sampling kernels.

Each kernel call starts the stream from a seed it is given and keeps the state in a local
variable, so its result depends only on its arguments, whichever thread runs it, and seeding
costs one addition (numba's ``np.random`` would fill 624 words of Mersenne Twister state).
"""

from __future__ import annotations

import numpy as np
from numba import njit

MASK64 = (1 << 64) - 1
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB  # splitmix64's constants


def splitmix64(x: int) -> int:
    """One splitmix64 step on a Python int (taken mod 2**64): a cheap, well-mixed 64-bit hash."""
    z = (x + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & MASK64
    return z ^ (z >> 31)


def kernel_seed(seed: int) -> np.uint64:
    """A kernel's starting state, from any Python int seed (taken mod 2**64)."""
    return np.uint64(splitmix64(seed))


# In uint64 throughout: numba would turn mixed uint64/int64 arithmetic into floats.
_U_GOLDEN, _U_MIX1, _U_MIX2 = np.uint64(_GOLDEN), np.uint64(_MIX1), np.uint64(_MIX2)
_S27, _S30, _S31 = np.uint64(27), np.uint64(30), np.uint64(31)


@njit(cache=True, nogil=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _U_MIX1
    z = (z ^ (z >> _S27)) * _U_MIX2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True, inline="always")
def next_u64(state):
    """The advanced ``state`` (uint64) and its 64 random bits (uint64)."""
    state += _U_GOLDEN
    return state, _mix(state)
