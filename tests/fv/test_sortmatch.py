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
