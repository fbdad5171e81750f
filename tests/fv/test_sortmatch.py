import torch

from vitalstudy.fv.sortmatch import as_channels_by_positions, prototype, sort_match_loss


def brute_force_loss(features, references):
    """The paper's formulation, written out: prototype quantiles, ranks by argsort of argsort,
    gather at the ranks, MSE with the gathered target detached."""
    proto = torch.stack([r.sort(dim=-1).values for r in references]).mean(0)  # (C, P)
    losses = []
    for f in features:
        ranks = f.argsort(dim=-1).argsort(dim=-1)
        target = proto.gather(-1, ranks).detach()
        losses.append(((f - target) ** 2).mean())
    return torch.stack(losses)


def test_matches_brute_force_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(3, 5, 17, generator=g, dtype=torch.float64, requires_grad=True)
    references = torch.randn(4, 5, 17, generator=g, dtype=torch.float64)
    ours = sort_match_loss(features, prototype(references).expand(3, -1, -1))
    ours_grad, = torch.autograd.grad(ours.sum(), features)
    theirs = brute_force_loss(features, references)
    theirs_grad, = torch.autograd.grad(theirs.sum(), features)
    assert torch.allclose(ours, theirs, atol=1e-12)
    assert torch.allclose(ours_grad, theirs_grad, atol=1e-12)


def test_zero_for_a_per_channel_permutation_of_a_single_reference():
    g = torch.Generator().manual_seed(1)
    reference = torch.randn(1, 6, 30, generator=g)
    permuted = torch.stack([reference[0, c, torch.randperm(30, generator=g)] for c in range(6)])[None]
    assert sort_match_loss(permuted, prototype(reference)[None]).item() == 0.0
    assert sort_match_loss(permuted + 0.1, prototype(reference)[None]).item() > 0.0


def test_batch_items_are_independent():
    g = torch.Generator().manual_seed(2)
    features = torch.randn(4, 3, 9, generator=g)
    protos = torch.randn(4, 3, 9, generator=g).sort(-1).values
    together = sort_match_loss(features, protos)
    alone = torch.cat([sort_match_loss(features[i:i + 1], protos[i:i + 1]) for i in range(4)])
    assert torch.equal(together, alone)


def test_layouts():
    assert as_channels_by_positions(torch.zeros(2, 8, 4, 5)).shape == (2, 8, 20)
    assert as_channels_by_positions(torch.zeros(2, 197, 1024)).shape == (2, 1024, 197)  # ViT tokens


def test_vital_names_the_images_whose_target_has_no_relevance_on_them():
    """A target inactive on the synthetic image has all-zero relevance weights, so relevance-weighted
    sort-matching gives that image no gradient (as in the authors' code); the objective counts those
    steps per image, and only those."""
    from vitalstudy.fv.vital import VitalObjective
    from vitalstudy.models.registry import HookedLayer

    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    prototypes = {"0": torch.randn(2, 4, 64, generator=g)}

    def relevance(x, names, start):  # image 0: its target dead (zero relevance); image 1: alive
        maps = torch.rand(x.shape[0], 4, 8, 8, generator=torch.Generator().manual_seed(1))
        maps[0] = 0
        return {"0": maps}

    objective = VitalObjective(model, [HookedLayer("0", 1.0)], prototypes, relevance, start=None)
    assert objective.diagnostics() is None  # nothing counted before a step
    for _ in range(3):
        x = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
        grad, = torch.autograd.grad(objective(x).sum(), x)
        assert grad[0].abs().max() == 0 and grad[1].abs().max() > 0
    assert objective.diagnostics() == [{"zero_relevance_steps": 3, "steps": 3}, {"zero_relevance_steps": 0, "steps": 3}]
    assert VitalObjective(model, [HookedLayer("0", 1.0)], prototypes).diagnostics() is None  # plain VITAL
