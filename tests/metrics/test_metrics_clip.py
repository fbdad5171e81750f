"""CLIP zero-shot: the whole job runs with an untrained small open_clip model (plumbing only: its
numbers mean nothing), and missing weights give `unavailable` rows that reach the table."""

import json

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch

from metrics_helpers import MODEL
from vitalstudy.errors import MissingAssetError
from vitalstudy.metrics import clip_zeroshot, jobs, tables
from vitalstudy.metrics.longformat import UNAVAILABLE

TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 64, "layers": 1, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1}}


@pytest.fixture
def tiny_clip(tmp_path, monkeypatch):
    (tmp_path / "vitalstudy-tiny-clip.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(tmp_path)
    monkeypatch.setattr(open_clip, "OPENAI_IMAGENET_TEMPLATES", open_clip.OPENAI_IMAGENET_TEMPLATES[:2])
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("vitalstudy-tiny-clip", pretrained=None)
    return clip_zeroshot.Clip(model.eval(), preprocess, open_clip.get_tokenizer("vitalstudy-tiny-clip"),
                              "vitalstudy-tiny-clip (untrained, test only)")


def test_class_embeddings_are_renormalised_means_of_normalised_templates(tiny_clip):
    names, templates = ["espresso", "tiger cat", "missile"], open_clip.OPENAI_IMAGENET_TEMPLATES[:2]
    got = clip_zeroshot.class_embeddings(tiny_clip, names, templates, torch.device("cpu"), batch_size=4)
    with torch.inference_mode():
        for i, name in enumerate(names):
            e = tiny_clip.model.encode_text(tiny_clip.tokenizer([t(name) for t in templates]))
            e = e / e.norm(dim=-1, keepdim=True)
            expected = e.mean(0) / e.mean(0).norm()
            assert torch.allclose(got[i], expected, atol=1e-5)


def test_clip_job_end_to_end_with_untrained_model(tiny_clip, metrics_config, bundled_index, fv_root):
    ctx = jobs.Context(metrics_config, MODEL, str(bundled_index), str(fv_root))
    rows = jobs.clip_job(ctx, clip_loader=lambda cfg, device: tiny_clip)
    got = {(r["metric"], r["method"]): r for r in rows}
    assert set(got) == {(m, method) for m in ("clip_top1", "clip_top5") for method in ("vital", "vital_lrp", "real")}
    for method in ("vital", "vital_lrp"):
        assert got["clip_top1", method]["n"] == 3 * 2  # classes x seeds
        assert 0 <= got["clip_top1", method]["value"] <= got["clip_top5", method]["value"] <= 100
    assert 1 <= got["clip_top1", "real"]["n"] <= 3  # only the natural images Lite0 classifies correctly
    assert "correctly" in got["clip_top1", "real"]["note"]
    assert all("untrained" in r["note"] for r in rows)


def test_missing_weights_are_unavailable_rows_in_the_table(monkeypatch, metrics_config, bundled_index, fv_root):
    monkeypatch.setattr(clip_zeroshot, "_cached_weights", lambda *_: None)
    with pytest.raises(MissingAssetError, match="metrics.clip.download is false"):
        clip_zeroshot.load_clip(metrics_config["metrics"]["clip"], torch.device("cpu"))
    missing_file = metrics_config["metrics"]["clip"] | {"weights": "/nonexistent/clip.pt"}
    with pytest.raises(MissingAssetError, match="metrics.clip.weights: .*/nonexistent/clip.pt does not exist"):
        clip_zeroshot.load_clip(missing_file, torch.device("cpu"))

    ctx = jobs.Context(metrics_config, MODEL, str(bundled_index), str(fv_root))
    rows = jobs.clip_job(ctx)
    assert rows and all(np.isnan(r["value"]) and r["note"].startswith(UNAVAILABLE) for r in rows)
    frame = tables.build_table(tables.table_specs(MODEL)[0], pd.DataFrame(rows), tables.paper_numbers(),
                               metrics_config)
    vital = frame[frame["method"] == "VITAL"].iloc[0]
    assert vital["CLIP top-1 % (ours)"] == "unavailable"
    assert "metrics.clip.download is false" in vital["notes"]
    assert vital["CLIP top-1 % (paper, resnet50)"] == "66.62"


def test_local_clip_checkpoint_is_hashed_into_the_next_record(tiny_clip, tmp_path):
    from vitalstudy.io import sha256_file
    from vitalstudy.provenance import Provenance

    checkpoint = tmp_path / "tiny-clip.pt"
    torch.save(tiny_clip.model.state_dict(), checkpoint)
    clip_zeroshot.load_clip({"model": "vitalstudy-tiny-clip", "pretrained": "openai", "weights": str(checkpoint)},
                            torch.device("cpu"))
    record = Provenance("metrics", {})
    record.write(tmp_path / "record.json")
    assert record.record["inputs"][str(checkpoint)] == sha256_file(checkpoint)
