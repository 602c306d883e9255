"""Synthetic generators: determinism, structure, spec parsing."""

from __future__ import annotations

import numpy as np
import pytest

from gnndist.config import ConfigError, SourceConfig
from gnndist.sources import load_graph
from gnndist.sources.synthetic import RmatParams, parse_spec

SBM = "synthetic:sbm:nodes=2000,edges=20000,blocks=4,features=8"
RMAT = "synthetic:rmat:nodes=2000,edges=20000,features=8,classes=4"


def _load(spec: str, **kw):
    return load_graph(SourceConfig(dataset=spec, **kw))


@pytest.mark.parametrize("spec", [SBM, RMAT])
def test_same_seed_same_graph_other_seed_other_graph(spec):
    a, b = _load(spec + ",seed=3"), _load(spec + ",seed=3")
    assert a.sha256() == b.sha256()
    assert _load(spec + ",seed=4").sha256() != a.sha256()
    assert _load(spec, seed=3).sha256() == a.sha256()  # the spec's seed defaults to SourceConfig.seed


@pytest.mark.parametrize("spec", [SBM, RMAT])
def test_sizes_meta_and_split(spec):
    g = _load(spec)
    assert g.num_nodes == 2000 and g.feature_dim == 8 and g.num_classes == 4
    assert 0 < g.num_edges <= 2 * 20_000
    assert np.bincount(g.y.numpy()).min() > 300  # every class well represented
    assert (int(g.train_mask.sum()), int(g.val_mask.sum()), int(g.test_mask.sum())) == (1200, 400, 400)
    assert g.meta["generator"] in ("sbm", "rmat") and g.meta["params"]["nodes"] == 2000
    src, dst = g.edge_index().numpy()
    assert np.array_equal(np.sort(src * 2000 + dst), np.sort(dst * 2000 + src))  # undirected by default


def test_sbm_edges_mostly_inside_blocks_and_blocks_shuffled():
    g = _load("synthetic:sbm:nodes=4000,edges=40000,blocks=5,p_in=0.9,features=4")
    src, dst = g.edge_index().numpy()
    y = g.y.numpy()
    assert (y[src] == y[dst]).mean() > 0.85
    # blocks are not contiguous id ranges: the first 800 ids mix all blocks
    assert len(np.unique(y[:800])) == 5


def test_sbm_degrees_are_skewed():
    deg = _load("synthetic:sbm:nodes=5000,edges=50000,exponent=2.2,features=0").in_degree().numpy()
    assert deg.max() > 10 * deg.mean()


def test_rmat_is_homophilous_power_law_and_features_learnable():
    g = _load("synthetic:rmat:nodes=20000,features=16,classes=4")
    src, dst = g.edge_index().numpy()
    y, x = g.y.numpy(), g.x.numpy()
    assert (y[src] == y[dst]).mean() > 0.5  # chance level is about 0.25-0.4
    deg = g.in_degree().numpy()
    assert deg.max() > 50 * deg.mean()
    assert deg[:1000].mean() < 3 * deg.mean()  # hubs are spread over ids (random relabel)
    # nearest class centroid on features alone beats chance clearly
    centroids = np.stack([x[y == c].mean(0) for c in range(4)])
    pred = np.argmin(((x[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    assert 0.45 < (pred == y).mean() < 0.99


def test_spec_parsing():
    kind, params = parse_spec("synthetic:rmat:nodes=1e3, edges=20000,features=16,classes=4,seed=1")
    assert kind == "rmat" and params == RmatParams(nodes=1000, edges=20000, features=16, classes=4, seed=1)
    with pytest.raises(ConfigError, match=r"'colour=1'.*\['a', 'b'"):
        parse_spec("synthetic:rmat:colour=1")
    with pytest.raises(ConfigError, match=r"nodes='lots' is not an integer"):
        parse_spec("synthetic:sbm:nodes=lots")
    with pytest.raises(ConfigError, match=r"p_in=1\.5"):
        parse_spec("synthetic:sbm:p_in=1.5")
    with pytest.raises(ConfigError, match=r"kind 'er'.*\['rmat', 'sbm'\]"):
        parse_spec("synthetic:er:nodes=5")
    with pytest.raises(ConfigError, match="no value"):
        parse_spec("synthetic:sbm:nodes")


def test_load_reports_a_step():
    from contextlib import contextmanager

    from gnndist.progress import QuietReporter

    steps = []

    class Recorder(QuietReporter):
        @contextmanager
        def step(self, description, total=None):
            steps.append(description)
            with super().step(description, total) as s:
                yield s

    load_graph(SourceConfig(dataset=SBM), reporter=Recorder())
    assert steps == ["generating sbm"]


def test_config_split_overrides_own_split():
    g = _load(SBM, split="per_class:10,10")
    assert int(g.train_mask.sum()) == 40 and int(g.val_mask.sum()) == 40
