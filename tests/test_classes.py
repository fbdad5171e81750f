from vitalstudy.data.classes import imagenet_classes


def test_class_index_has_1000_distinct_wnids_in_standard_order(imagenet_sample):
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert len(set(classes.wnids)) == 1000
    assert classes.wnid(0) == "n01440764" and classes.name(0) == "tench"
    # The sample's file names sorted give the standard order (shared/data/README.md).
    sample_wnids = [p.name.split("_", 1)[0] for p in sorted(imagenet_sample.iterdir())]
    assert tuple(sample_wnids) == classes.wnids


def test_lookups_round_trip():
    classes = imagenet_classes()
    assert classes.index("n07920052") == 967
    assert classes.name("n07920052") == "espresso"
    assert all(classes.index(classes.wnid(i)) == i for i in range(0, 1000, 37))
