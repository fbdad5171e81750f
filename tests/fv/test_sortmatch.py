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


def test_dead_relevance_match_activations_gives_a_dead_image_plain_vitals_loss_and_leaves_live_ones():
    """`dead_relevance: match_activations`: the image whose target is dead gets plain activation
    matching (the loss and gradient of VITAL without relevance); the live image keeps its relevance
    weights exactly. The default (the authors') leaves the dead image without gradient (above)."""
    from vitalstudy.fv.vital import VitalObjective
    from vitalstudy.models.registry import HookedLayer

    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    layers = [HookedLayer("0", 1.0)]
    prototypes = {"0": torch.randn(2, 4, 64, generator=g)}
    importance = {"0": torch.rand(2, 4, generator=g)}

    def relevance(x, names, start):
        maps = torch.rand(x.shape[0], 4, 8, 8, generator=torch.Generator().manual_seed(1))
        maps[0] = 0
        return {"0": maps}

    x = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)

    def loss_and_grad(objective):
        loss = objective(x)
        return loss.detach(), torch.autograd.grad(loss.sum(), x)[0]

    for on in ("error", "features"):
        fallback = VitalObjective(model, layers, prototypes, relevance, None, importance, on, "match_activations")
        authors = VitalObjective(model, layers, prototypes, relevance, None, importance, on)
        plain = VitalObjective(model, layers, prototypes, None, None, importance if on == "error" else None, on)
        (loss, grad), (loss_a, grad_a) = loss_and_grad(fallback), loss_and_grad(authors)
        if on == "features":  # the features reading carries importance in the weights: compare by hand
            with torch.no_grad():
                features = model(x) * importance["0"][:, :, None, None]
            from vitalstudy.fv.sortmatch import as_channels_by_positions, sort_match_loss
            expected = sort_match_loss(as_channels_by_positions(features), prototypes["0"])
            assert torch.allclose(loss[0], expected[0])
        else:
            loss_p, grad_p = loss_and_grad(plain)
            assert torch.allclose(loss[0], loss_p[0]) and torch.allclose(grad[0], grad_p[0])
        assert grad[0].abs().max() > 0 and grad_a[0].abs().max() == 0
        assert torch.equal(loss[1], loss_a[1]) and torch.equal(grad[1], grad_a[1])
        assert fallback.diagnostics()[0]["zero_relevance_steps"] == 1  # still counted


def test_dead_relevance_activate_target_raises_a_dead_channel_through_its_pre_activation():
    """`dead_relevance: activate_target`: the dead image's loss gains minus its channel's mean
    *before* the closing ReLU (whose output has no gradient when the channel is off everywhere), so
    its gradient is that activation's; the live image is exactly the default's."""
    from vitalstudy.fv.relevance import Start
    from vitalstudy.fv.vital import VitalObjective
    from vitalstudy.models.registry import HookedLayer

    g = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()))
    layers, start = [HookedLayer("0", 1.0)], Start("channel", layer="0", indices=(2, 1))
    prototypes = {"0": torch.randn(2, 4, 64, generator=g)}

    def relevance(x, names, start):
        maps = torch.rand(x.shape[0], 4, 8, 8, generator=torch.Generator().manual_seed(1))
        maps[0] = 0
        return {"0": maps}

    x = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
    woken = VitalObjective(model, layers, prototypes, relevance, start, dead_relevance="activate_target")
    authors = VitalObjective(model, layers, prototypes, relevance, start)
    loss, loss_a = woken(x), authors(x)
    grad, = torch.autograd.grad(loss.sum(), x)
    grad_a, = torch.autograd.grad(loss_a.sum(), x)
    pre_mean = model[0][0](x)[0, 2].mean()  # image 0's target: channel 2, before the ReLU
    expected_grad, = torch.autograd.grad(-pre_mean, x)
    assert torch.allclose(loss[0], loss_a[0] - pre_mean)
    assert torch.allclose(grad[0], expected_grad[0]) and grad[0].abs().max() > 0
    assert torch.equal(loss[1], loss_a[1]) and torch.equal(grad[1], grad_a[1])
