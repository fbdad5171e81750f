import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vitalstudy.data.classes import classes_for, imagenet_classes, parse_labels, read_labels_file
from vitalstudy.errors import ConfigError


def test_class_index_has_1000_distinct_wnids_in_standard_order(imagenet_sample):
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert len(set(classes.ids)) == 1000
    assert classes.id(0) == "n01440764" and classes.name(0) == "tench"
    # The sample's file names sorted give the standard order (shared/data/README.md).
    sample_wnids = [p.name.split("_", 1)[0] for p in sorted(imagenet_sample.iterdir())]
    assert tuple(sample_wnids) == classes.ids


def test_lookups_round_trip():
    classes = imagenet_classes()
    assert classes.index("n07920052") == 967
    assert classes.name("n07920052") == "espresso"
    assert all(classes.index(classes.id(i)) == i for i in range(0, 1000, 37))


# --------------------------------------------------------------------------- labels files


def test_labels_file_gives_ids_names_and_output_order(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("# my 3-class model\ncat\tHouse cat\ngolden_retriever\nn07920052\tespresso\n\n", encoding="utf-8")
    classes = read_labels_file(path)
    assert classes.ids == ("cat", "golden_retriever", "n07920052")
    assert [classes.index(c) for c in classes.ids] == [0, 1, 2]  # comment lines are no outputs
    assert classes.names == ("House cat", "golden retriever", "espresso")
    assert classes.origin == str(path) and not classes.is_imagenet
    error = classes.unknown("targets.classes[0]", "catt", "mynet")
    assert str(error).startswith("targets.classes[0]: 'catt' is not a class of ") and "nearest: cat" in str(error)


@pytest.mark.parametrize("text, problem", [
    ("cat\nlayer4_c12\n", r"line 2: id 'layer4_c12' looks like an inner-neuron id"),
    ("cat\n\ndog\n", r"line 2: blank line"),
    ("cat\ncat\tCat\n", r"line 2: id 'cat' repeats line 1"),
    ("cat\ta\tb\n", r"line 1: more than one tab"),
    ("cat\t \n", r"line 1: empty display name"),
    ("concept-x\n", r"line 1: id 'concept-x' starts with concept-"),
    ("a b\n", r"line 1: id 'a b' is not letters"),
    ("# only a comment\n", r"no classes"),
])
def test_malformed_labels_name_file_line_and_problem(text, problem):
    with pytest.raises(ConfigError, match=re.escape("labels.txt") + ".*" + problem):
        parse_labels(text, "labels.txt")


def test_unreadable_labels_file_names_the_line(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(b"cat\ndog\xff\n")
    with pytest.raises(ConfigError, match=r"labels.txt, line 2: not UTF-8 text \(byte 0xff\)"):
        read_labels_file(path)
    with pytest.raises(ConfigError, match=r"does not exist"):
        read_labels_file(tmp_path / "absent.txt")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=30), max_size=8))
def test_any_labels_text_parses_or_names_file_line_and_problem(lines):
    """Whatever the file holds: a class list whose ids are usable ids, or one ConfigError naming the
    file, the line and the problem; never another exception."""
    text = "\n".join(lines)
    try:
        classes = parse_labels(text, "labels.txt")
    except ConfigError as exc:
        assert re.match(r"labels\.txt(, line \d+: \S.*|: no classes)", str(exc)), str(exc)
        return
    assert len(set(classes.ids)) == len(classes.ids) == len(classes.names) >= 1
    for class_id in classes.ids:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", class_id) and not re.fullmatch(r".+_c[0-9]+", class_id)
        assert classes.ids[classes.index(class_id)] == class_id


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=60))
def test_any_labels_bytes_read_or_name_the_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("labels") / "labels.txt"
    path.write_bytes(data)
    try:
        read_labels_file(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), str(exc)


def test_a_model_without_labels_file_has_imagenet_classes():
    assert classes_for("resnet50") is imagenet_classes()
