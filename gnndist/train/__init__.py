"""Synchronized data-parallel training on Ray Train (imports Ray): :func:`train` a model over a
partition directory, :func:`evaluate` a saved checkpoint."""

from gnndist.train.evaluate import evaluate
from gnndist.train.trainer import TrainResult, train

__all__ = ["TrainResult", "evaluate", "train"]
