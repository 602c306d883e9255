"""train.model_module (``--model-module FILE.py:NAME``): a model of the user's own, loaded from a
file or an importable module, built with the graph's widths and the config's settings; what
cannot be loaded is a ConfigError that says why."""

from __future__ import annotations

import pytest

from gnndist.cli import main
from gnndist.config import ConfigError, TrainConfig
from gnndist.train.loop import model_factory
from gnndist.train.step import ModelInput
from gnndist.train.trainer import train

MODEL_FILE = '''
import torch


class Linear(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs
        self.lin = torch.nn.Linear(kwargs["in_channels"], kwargs["out_channels"])

    def forward(self, x, edge_index):
        return self.lin(x)
'''


@pytest.mark.parametrize("spec", ["model.py", "model.py:", ":Linear", "model.py:not-a-name"])
def test_the_form_is_checked_with_the_config(spec):
    with pytest.raises(ConfigError, match=r"train.model_module must be FILE.py:NAME or package.module:NAME"):
        TrainConfig(model_module=spec)


def test_a_file_s_callable_builds_the_model_with_the_widths_and_settings(tmp_path):
    (tmp_path / "model.py").write_text(MODEL_FILE)
    config = TrainConfig(model_module=f"{tmp_path / 'model.py'}:Linear", hidden=8, dropout=0.25)
    model = model_factory(config, 5, 3, 2)()
    assert model.kwargs == {"in_channels": 5, "out_channels": 3, "hidden": 8, "num_layers": 2, "dropout": 0.25}
    assert ModelInput.of(model) is ModelInput.PYG


def test_an_importable_module_is_imported(tmp_path, monkeypatch):
    (tmp_path / "user_models").mkdir()
    (tmp_path / "user_models" / "__init__.py").write_text(MODEL_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    model = model_factory(TrainConfig(model_module="user_models:Linear"), 5, 3, 2)()
    assert type(model).__module__ == "user_models" and model.lin.in_features == 5


@pytest.mark.parametrize(("spec", "problem"), [
    ("missing.py:Linear", r"there is no file .*missing\.py"),
    ("model.py:Nothing", r"model\.py has no callable 'Nothing'"),
    ("broken.py:Linear", r"importing it failed: No module named 'not_installed'"),
    ("no_such_package.models:Linear", r"importing it failed: No module named 'no_such_package'"),
])
def test_what_cannot_be_loaded_says_why(tmp_path, monkeypatch, spec, problem):
    monkeypatch.chdir(tmp_path)  # relative files are the working directory's
    (tmp_path / "model.py").write_text(MODEL_FILE)
    (tmp_path / "broken.py").write_text("import not_installed\n")
    with pytest.raises(ConfigError, match=rf"train.model_module '{spec}': {problem}"):
        model_factory(TrainConfig(model_module=spec), 5, 3, 2)


def test_a_module_and_a_factory_together_are_refused(cora_parts, tmp_path):
    config = TrainConfig(model_module="gnndist.train.models:GraphSAGE")
    with pytest.raises(ConfigError, match="train.model_module is .*and train\\(\\) was given a model factory too"):
        train(lambda: None, cora_parts, config=config, out_dir=tmp_path / "run")


def test_the_command_line_names_its_flag(cora_parts, tmp_path, capsys):
    assert main(["train", "--partitions", str(cora_parts), "--model-module", "model.py", "--out",
                 str(tmp_path / "run"), "--quiet"]) == 2
    assert "--model-module must be FILE.py:NAME or package.module:NAME" in capsys.readouterr().err
