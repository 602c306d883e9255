"""Synchronized data-parallel training on Ray Train: :func:`train` a model over a partition
directory, :func:`evaluate` a saved checkpoint.

Those two import Ray, so they load on first use: the modules without Ray (``models``, ``step``,
``checkpoint``, ``metrics``, ``relu_dropout``) then import where Ray is not installed, as on a
machine that only checks the training step (``scripts/gpu_check.py``).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gnndist.train.evaluate import evaluate
    from gnndist.train.trainer import TrainResult, train

__all__ = ["TrainResult", "evaluate", "train"]

_HOME = {"TrainResult": "gnndist.train.trainer", "train": "gnndist.train.trainer",
         "evaluate": "gnndist.train.evaluate"}


class _Package(ModuleType):
    def __getattr__(self, name: str):
        if name not in _HOME:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(_HOME[name]), name)
        setattr(self, name, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        # Importing the submodule ``evaluate`` binds the module to this name; the package's
        # ``evaluate`` stays the function, as it was when this file imported it eagerly.
        if not (name in _HOME and isinstance(value, ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
