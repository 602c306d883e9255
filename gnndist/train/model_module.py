"""A model of the user's own, named by ``TrainConfig.model_module`` (``gnndist train
--model-module FILE.py:NAME``): the callable that builds it, loaded once in the driver.

``FILE.py`` is executed as a module that is not put in ``sys.modules``: cloudpickle then sends its
classes and functions to the workers by value, so a worker on another node needs the file no more
than the packages it imports. ``package.module`` is imported; it is sent by reference, as any
importable code is, so it must be importable on every node.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch

from gnndist.config import ConfigError, TrainConfig
from gnndist.sources.dgl import NEEDS_DGL_ENV


def module_factory(config: TrainConfig, in_channels: int, out_channels: int,
                   num_layers: int) -> Callable[[], torch.nn.Module]:
    """A factory of ``config.model_module``'s model, called as ``NAME(in_channels=...,
    out_channels=..., hidden=config.hidden, num_layers=..., dropout=config.dropout)``.

    Raises:
        ConfigError: the file or module cannot be loaded (naming the error, and how to get DGL
            where it is DGL that is missing), or it has no callable ``NAME``.
    """
    spec = config.model_module
    source, _, name = spec.rpartition(":")
    module = _load(spec, source)
    build = getattr(module, name, None)
    if not callable(build):
        raise ConfigError(f"train.model_module {spec!r}: {source} has no callable {name!r}")

    def factory() -> torch.nn.Module:
        return build(in_channels=in_channels, out_channels=out_channels, hidden=config.hidden,
                     num_layers=num_layers, dropout=config.dropout)

    return factory


def _load(spec: str, source: str):
    """The module ``source`` names: a ``.py`` file (or any path with a ``/``), else a dotted name."""
    try:
        if not (source.endswith(".py") or "/" in source):
            return importlib.import_module(source)
        path = Path(source).resolve()
        if not path.is_file():
            raise ConfigError(f"train.model_module {spec!r}: there is no file {path}")
        loader_spec = importlib.util.spec_from_file_location(f"gnndist_model_module.{path.stem}", path)
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        return module
    except ImportError as e:
        hint = f" ({NEEDS_DGL_ENV})" if (e.name or "").split(".")[0] == "dgl" else ""
        raise ConfigError(f"train.model_module {spec!r}: importing it failed: {e}{hint}") from None
