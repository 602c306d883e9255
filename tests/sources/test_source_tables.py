"""Labels and features tables with a header row and an id column (as the MUSAE/karateclub graphs ship them)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from gnndist.config import ConfigError, SourceConfig
from gnndist.graph import UNLABELLED, GraphError
from gnndist.sources import load_graph


def _graph(tmp_path, labels: str | None = None, features: str | None = None, suffix: str = ".csv", **kw):
    edges = tmp_path / "edges.csv"
    edges.write_text("id_1,id_2\n0,1\n1,2\n2,3\n")
    paths = {}
    for name, text in (("labels", labels), ("features", features)):
        if text is not None:
            paths[name] = tmp_path / f"{name}{suffix}"
            paths[name].write_text(text)
    return load_graph(SourceConfig(dataset=str(edges), split="random:0.5,0.25" if labels else "default",
                                   **{k: str(v) for k, v in paths.items()}, **kw))


def test_a_musae_target_file_is_placed_by_its_id_column(tmp_path):
    g = _graph(tmp_path, labels="id,target\n2,1\n0,0\n3,1\n1,0\n")
    assert g.y.tolist() == [0, 0, 1, 1] and g.num_classes == 2 and g.num_nodes == 4


@pytest.mark.parametrize("name", ["node", "node_id", "ID"])
def test_the_id_column_is_found_by_its_name_anywhere(tmp_path, name):
    g = _graph(tmp_path, labels=f"target,{name}\n1,3\n0,0\n1,2\n0,1\n")
    assert g.y.tolist() == [0, 0, 1, 1]


def test_a_label_column_by_name_or_index_among_text_columns(tmp_path):
    # MUSAE GitHub: id,name,ml_target, names holding the delimiter inside quotes
    text = 'id,name,ml_target\n1,"b, inc",1\n0,a,0\n3,d,1\n2,c,0\n'
    for column in ("ml_target", 2):
        assert _graph(tmp_path, labels=text, label_column=column).y.tolist() == [0, 1, 0, 1]


def test_several_columns_without_a_label_column_is_a_question_naming_them(tmp_path):
    with pytest.raises(GraphError, match=r"labels.csv.*2 columns besides the id column \(\['name', 'ml_target'\]\)"
                                         r".*source.label_column = ml_target"):
        _graph(tmp_path, labels="id,name,ml_target\n0,a,0\n1,b,1\n2,c,0\n3,d,1\n")


def test_a_headerless_label_file_stays_one_class_per_line(tmp_path):
    g = _graph(tmp_path, labels="1\n0\nnan\n-1\n")
    assert g.y.tolist() == [1, 0, UNLABELLED, UNLABELLED]


def test_an_explicit_id_column_in_a_headerless_tab_table(tmp_path):
    g = _graph(tmp_path, labels="1\t3\n0\t0\n1\t2\n0\t1\n", suffix=".tsv", id_column=1)
    assert g.y.tolist() == [0, 0, 1, 1]


def test_features_with_a_header_and_an_id_column(tmp_path):
    g = _graph(tmp_path, features="node,f0,f1\n3,6,7\n1,2,3\n0,0,1\n2,4,5\n")
    assert g.x.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_a_gzipped_table_with_a_header(tmp_path):
    edges = tmp_path / "edges.csv"
    edges.write_text("0,1\n")
    with gzip.open(tmp_path / "y.csv.gz", "wt") as f:
        f.write("# classes\nid,target\n1,1\n0,0\n")
    g = load_graph(SourceConfig(dataset=str(edges), labels=str(tmp_path / "y.csv.gz"), split="random:0.5,0"))
    assert g.y.tolist() == [0, 1]


@pytest.mark.parametrize("text, problem", [
    ("id,target\n0,0\n1,1\n1,0\n3,1\n", r"node 1 has 2 rows"),
    ("id,target\n0,0\n1,1\n4,0\n3,1\n", r"no row for node 2: .*holds 4"),
])
def test_duplicate_and_missing_ids_name_the_file_and_the_id(tmp_path, text, problem):
    with pytest.raises(GraphError, match=rf"labels.csv.*{problem}"):
        _graph(tmp_path, labels=text)


def test_an_unknown_column_lists_the_columns(tmp_path):
    with pytest.raises(GraphError, match=r"source.label_column 'class' names no column of it: "
                                         r"its header names id, target"):
        _graph(tmp_path, labels="id,target\n0,0\n1,1\n2,0\n3,1\n", label_column="class")
    with pytest.raises(GraphError, match=r"source.id_column 'id' .*no header row and 1 columns"):
        _graph(tmp_path, labels="0\n1\n0\n1\n", id_column="id")


def test_a_label_column_on_an_npy_file_is_refused(tmp_path):
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1]))
    edges = tmp_path / "edges.csv"
    edges.write_text("0,1\n")
    with pytest.raises(GraphError, match=r"y.npy.*text table"):
        load_graph(SourceConfig(dataset=str(edges), labels=str(tmp_path / "y.npy"), label_column="target"))


def test_column_fields_are_validated():
    with pytest.raises(ConfigError, match=r"source.id_column must be a column name or an index"):
        SourceConfig(id_column=-1)
    with pytest.raises(ConfigError, match=r"source.label_column"):
        SourceConfig(label_column=" ")
