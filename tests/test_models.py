"""Every registered model of every workload: built through its workload, one forward and backward pass through
the workload's task (shapes of the output contract, a finite loss, a gradient for every weight); and a model of
one workload asked for by another is a one-line error."""

from __future__ import annotations

import pytest
import torch

from lab28.errors import Lab28Error
from lab28.models import available_models, create_model
from lab28.models.registry import count_parameters
from lab28.workloads import MODEL_MODULES, get_workload

WORKLOADS = sorted(MODEL_MODULES)


def _batch(workload: str, n: int = 6):
    if workload == "gsn":
        from lab28.workloads.gsn.synth import generate

        images, counts = generate(n, seed=0)
        return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(counts).long()
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8), torch.arange(n) % 10


def _config(workload: str, model: str):
    if workload == "gsn":
        from lab28.workloads.gsn.config import preset

        config = preset("quick", "joint")
        config.model.name = model
        return config
    from lab28.workloads.classify.config import preset

    return preset("quick", model)


@pytest.mark.parametrize("workload_name, model", [(w, m) for w in WORKLOADS for m in available_models(w)])
def test_every_registered_model_trains_through_its_workload(workload_name, model):
    workload = get_workload(workload_name)
    config = _config(workload_name, model)
    torch.manual_seed(0)
    net = workload.build_model(config).train()
    task = workload.task(config)
    images, targets = _batch(workload_name)
    x, t = task.prepare_batch(images, targets, train=True, generator=torch.Generator().manual_seed(0))
    outputs = net(x)
    if workload_name == "gsn":  # the GSN contract: (135 log-probabilities, 6 counts)
        log_probs, counts = outputs
        assert log_probs.shape == (6, 135) and counts.shape == (6, 6)
        assert torch.allclose(log_probs.exp().sum(dim=1), torch.ones(6), atol=1e-4)
    else:  # classification: 10 logits
        assert outputs.shape == (6, 10)
    loss, _ = task.loss(outputs, t)
    assert torch.isfinite(loss)
    loss.backward()
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("asked, workload", [("simple-cnn", "gsn"), ("shape-classifier", "classify")])
def test_a_model_of_another_workload_is_refused(asked, workload):
    with pytest.raises(Lab28Error) as info:
        create_model(asked, workload=workload)
    message = str(info.value)
    assert "is not a" in message and ", ".join(available_models(workload)) in message and "\n" not in message


def test_unknown_model_lists_the_choices():
    with pytest.raises(Lab28Error, match="unknown model 'resnet-9000'; choose one of: compact-cnn, counting-resnet, counting-resnet-p4, counting-resnet-p4-fullres, counting-resnet-p4-gated, counting-resnet-p4-local, counting-resnet-p4-symmetric, shape-classifier"):
        create_model("resnet-9000", workload="gsn")


def test_compact_cnn_refuses_a_start_for_a_linear_it_does_not_have(tmp_path, capsys):
    """fc_init sets the lab backbone's big Linear; asking compact-cnn for one is a one-line error before any folder."""
    from lab28.cli import main

    code = main(["train", "gsn", "--synth", "--preset", "quick", "--fc-init", "centered", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "model 'compact-cnn' has none" in err and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_compact_cnn_is_small_and_pools_over_positions():
    """The demo's model: tens of thousands of weights, and its features do not depend on where a shape is."""
    model = create_model("compact-cnn", workload="gsn").eval()
    assert count_parameters(model) < 60_000
    x = torch.zeros(1, 1, 28, 28)
    x[0, 0, 4:11, 4:11] = 1.0  # a 7x7 square ...
    moved = torch.roll(x, shifts=(8, 4), dims=(2, 3))  # ... moved by multiples of the network's stride (4), away from the border
    assert torch.allclose(model.features(x), model.features(moved), atol=1e-5)


def test_counting_resnet_is_a_few_hundred_thousand_weights_ending_in_a_pool():
    """The free architecture: under half a million weights (the lab model has 12.9 million), 128 pooled features
    per image whatever the batch, read by the lab model's heads."""
    model = create_model("counting-resnet", workload="gsn").eval()
    assert 400_000 < count_parameters(model) < 500_000
    features = model.features(torch.rand(3, 1, 28, 28))
    assert features.shape == (3, 128) and (features >= 0).all()


def test_counting_resnet_p4_turns_its_features_with_the_image():
    """The quarter-turn design: turning the image by 90 degrees moves every pooled feature to the next orientation.
    A 29x29 input keeps every strided grid centred, so the whole backbone commutes with turns exactly there."""
    model = create_model("counting-resnet-p4", workload="gsn").eval()
    assert count_parameters(model) < count_parameters(create_model("counting-resnet", workload="gsn")) / 3
    x = torch.rand(2, 1, 29, 29)
    features = model.features(x).view(2, 32, 4)
    turned = model.features(torch.rot90(x, 1, dims=(2, 3))).view(2, 32, 4)
    assert torch.allclose(turned, torch.roll(features, shifts=1, dims=2), atol=1e-5)
    assert not torch.allclose(turned, features, atol=1e-3)  # the orientations hold different values
    assert model(torch.rand(3, 1, 28, 28))[0].shape == (3, 135)


def test_counting_resnet_p4_fullres_turns_its_features_with_the_image_exactly_on_28x28():
    """The larger free model halves its maps by 2x2 averages, so its features turn with the image exactly on the
    real image size (strided layers miss by a pixel there: the parametrised test below)."""
    model = create_model("counting-resnet-p4-fullres", workload="gsn").eval()
    x = torch.rand(2, 1, 28, 28)
    features = model.features(x).view(2, 48, 4)
    turned = model.features(torch.rot90(x, 1, dims=(2, 3))).view(2, 48, 4)
    assert torch.allclose(turned, torch.roll(features, shifts=1, dims=2), atol=1e-5)
    assert not torch.allclose(turned, features, atol=1e-3)  # the orientations hold different values


@pytest.mark.parametrize("hidden", [0, 16])
def test_counting_resnet_p4_symmetric_answers_a_turned_image_with_the_permuted_answer(hidden):
    """The heads read the pooled features in all four orientations, so the whole network turns with the image:
    a quarter-turned image gets exactly the class probabilities of the turned classes and the permuted counts,
    in training mode (BatchNorm on the batch) and in evaluation mode, with or without a hidden layer. The same
    backbone under ordinary heads (counting-resnet-p4-fullres) does not."""
    torch.manual_seed(0)
    symmetric = create_model("counting-resnet-p4-symmetric", workload="gsn", hidden=hidden).double()
    torch.manual_seed(0)
    ordinary = create_model("counting-resnet-p4-fullres", workload="gsn", hidden=hidden).double()
    assert count_parameters(symmetric) == count_parameters(ordinary)  # the same weights, read differently
    for mode in ("train", "eval"):
        for model in (symmetric, ordinary):
            getattr(model, mode)()
        assert worst_turn_miss(symmetric) < 1e-5, mode  # the heads compute in float32
        assert worst_turn_miss(ordinary) > 1e-3, mode


def worst_turn_miss(model) -> float:
    """The largest difference between a model's answer for quarter-turned images and its answer for the images,
    turned: the class probabilities of the turned classes and the permuted counts."""
    from lab28.workloads.gsn.labels import ROT90_CCW_PERM, all_class_counts, encode_counts

    turned_class = encode_counts(all_class_counts()[:, list(ROT90_CCW_PERM)])  # class c, turned: turned_class[c]
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    log_probs, counts = model(x)
    turned_log_probs, turned_counts = model(torch.rot90(x, 1, dims=(2, 3)))
    return max((turned_log_probs[:, turned_class] - log_probs).abs().max().item(),
               (turned_counts - counts[:, list(ROT90_CCW_PERM)]).abs().max().item())


def test_counting_resnet_p4_local_adds_a_pointwise_layer_before_the_pool_and_still_turns_with_the_image():
    """counting-resnet-p4-symmetric plus one 1x1 group convolution (48 filters per orientation, each reading 48
    channels in 4 orientations, with BatchNorm) and a ReLU at 7x7 before the mean: exactly that many more weights,
    non-negative pooled features, and still the permuted answer for a turned image in both modes."""
    from lab28.workloads.gsn.counting_resnet import GroupConv

    torch.manual_seed(0)
    local = create_model("counting-resnet-p4-local", workload="gsn", hidden=16).double()
    symmetric = create_model("counting-resnet-p4-symmetric", workload="gsn", hidden=16)
    assert count_parameters(local) - count_parameters(symmetric) == 48 * 48 * 4 + 2 * 48
    pointwise, relu = list(local.backbone.layers)[-2:]
    assert isinstance(pointwise, GroupConv) and pointwise.kernel_size == 1 and isinstance(relu, torch.nn.ReLU)
    features = local.eval().features(torch.rand(3, 1, 28, 28, dtype=torch.float64))
    assert features.shape == (3, 192) and (features >= 0).all()
    for mode in ("train", "eval"):
        getattr(local, mode)()
        assert worst_turn_miss(local) < 1e-5, mode


def test_counting_resnet_p4_gated_gates_its_last_maps_by_the_whole_image_and_still_turns_with_it():
    """counting-resnet-p4-local plus two pointwise group convolutions on the image's mean features (48 -> 12 -> 48
    filters per orientation, each with BatchNorm) whose sigmoid scales the 7x7 maps: exactly that many more weights;
    the gates depend on the whole image, so changing one corner of it changes what the other corner's maps pass on;
    and a turned image still gets the permuted answer in both modes."""
    from lab28.workloads.gsn.counting_resnet import ContextGate

    torch.manual_seed(0)
    gated = create_model("counting-resnet-p4-gated", workload="gsn", hidden=16).double()
    local = create_model("counting-resnet-p4-local", workload="gsn", hidden=16)
    assert count_parameters(gated) - count_parameters(local) == 48 * 4 * 12 + 2 * 12 + 12 * 4 * 48 + 2 * 48
    gate = next(m for m in gated.backbone.layers if isinstance(m, ContextGate))
    x = torch.rand(2, 192, 7, 7, dtype=torch.float64)
    changed = x.clone()
    changed[:, :, 0, 0] += 5.0  # one position of the top-left corner
    gate.eval()
    corner = (slice(None), slice(None), 6, 6)  # the bottom-right position, whose own features are unchanged
    ratio = gate(x)[corner] / x[corner]
    assert ((ratio > 0) & (ratio < 1)).all()  # a gate in (0, 1) per (filter, orientation)
    assert not torch.allclose(gate(changed)[corner], gate(x)[corner])
    for mode in ("train", "eval"):
        getattr(gated, mode)()
        assert worst_turn_miss(gated) < 1e-5, mode


def test_symmetries_of_the_grid_compose_as_the_dihedral_group():
    """`transform` applies (mirror, turns); `_compose_symmetries(g, h)` must be the symmetry of doing h, then g, and
    `_inverse` must undo it. A wrong sign in the composition would build d4 filters that read the wrong input
    orientation, and the network would not be equivariant."""
    from lab28.workloads.gsn.counting_resnet import GROUPS, _compose_symmetries, _inverse, transform

    x = torch.arange(25.0).view(5, 5)
    d4 = GROUPS["d4"]
    images = [transform(x, g) for g in d4]
    assert len({tuple(image.flatten().tolist()) for image in images}) == 8  # eight different symmetries
    for g in d4:
        assert torch.equal(transform(transform(x, _inverse(g)), g), x)
        for h in d4:
            assert torch.equal(transform(transform(x, h), g), transform(x, _compose_symmetries(g, h)))


@pytest.mark.parametrize("group", ["p4", "d4"])
@pytest.mark.parametrize("pool_first", [False, True])
@pytest.mark.parametrize("lift_kernel", [3, 9])
@pytest.mark.parametrize("context_gate", [0, 2])
def test_group_convolutions_permute_their_orientations_with_the_image(group, pool_first, lift_kernel, context_gate):
    """Transforming the image by a symmetry k moves the pooled feature of orientation g to orientation k g, in
    training mode (BatchNorm on the batch) and in evaluation mode, with a residual block at every stage. Strided
    convolutions keep this exactly only on odd-sized maps (29x29); halving by a 2x2 average first (`pool_first`)
    keeps it on the real 28x28 images. A larger first filter (`lift_kernel`) turns about its centre too, and gates
    computed from the mean features (`context_gate`) move with them."""
    from lab28.workloads.gsn.counting_resnet import (GROUPS, GroupCountingBackbone, _compose_symmetries, _inverse,
                                                     transform)

    torch.manual_seed(0)
    elements = GROUPS[group]
    backbone = GroupCountingBackbone((2, 3, 4), blocks=(1, 1, 1), group=group, pool_first=pool_first,
                                     lift_kernel=lift_kernel, context_gate=context_gate).double()
    assert backbone.layers[0].weight.shape[-2:] == (lift_kernel, lift_kernel)

    def worst_miss(size: int) -> float:
        x = torch.rand(3, 1, size, size, dtype=torch.float64)
        features = backbone(x).view(3, 4, len(elements))
        assert not torch.allclose(features[..., 0], features[..., 1])  # the orientations hold different values
        miss = 0.0
        for k in elements:
            moved = backbone(transform(x, k)).view(3, 4, len(elements))
            expected = features[..., [elements.index(_compose_symmetries(_inverse(k), g)) for g in elements]]
            miss = max(miss, (moved - expected).abs().max().item())
        return miss

    for mode in (backbone.train, backbone.eval):
        mode()
        assert worst_miss(28 if pool_first else 29) < 1e-10
        if not pool_first:
            assert worst_miss(28) > 1e-3


@pytest.mark.parametrize("group", ["p4", "d4"])
def test_a_pointwise_group_convolution_permutes_its_orientations_with_the_image(group):
    """A 1x1 group convolution (kernel_size=1) after a lifting 3x3 one: transforming the image by k moves each
    position's orientation g to k g, exactly; an even kernel, which has no centre to turn about, is refused."""
    from lab28.workloads.gsn.counting_resnet import GROUPS, GroupConv, _compose_symmetries, _inverse, transform

    torch.manual_seed(0)
    elements = GROUPS[group]
    layers = torch.nn.Sequential(GroupConv(1, 3, lifting=True, group=group), torch.nn.ReLU(),
                                 GroupConv(3, 2, group=group, kernel_size=1)).double()
    x = torch.rand(2, 1, 9, 9, dtype=torch.float64)
    maps = layers(x).view(2, 2, len(elements), 9, 9)
    for k in elements:
        moved = layers(transform(x, k)).view(2, 2, len(elements), 9, 9)
        expected = transform(maps[:, :, [elements.index(_compose_symmetries(_inverse(k), g)) for g in elements]], k)
        assert (moved - expected).abs().max() < 1e-10
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        GroupConv(3, 2, kernel_size=2)


def test_group_convolutions_train_under_torch_compile_on_two_threads():
    """The group convolution's weight, gathered for every orientation and stacked, must train under torch.compile
    (`--compile true`) on a multi-threaded CPU with the gradients of eager mode. Gathering it by indexing with a
    tensor corrupted the heap there (torch 2.13's CPU inductor code, two threads) and the process died, so the check
    runs in a child process: a crash is a failed test, not a dead test session."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import torch
        torch.set_num_threads(2)
        from lab28.workloads.gsn.counting_resnet import GroupConv
        torch.manual_seed(0)
        layers = torch.nn.Sequential(GroupConv(1, 12, lifting=True), GroupConv(12, 12))
        x = torch.rand(16, 1, 12, 12)
        weights = torch.randn(16, 48, 12, 12)  # a loss whose gradient BatchNorm does not cancel
        grads = []
        for forward in (layers, torch.compile(layers)):
            layers.zero_grad()
            (forward(x) * weights).sum().backward()
            grads.append([p.grad.clone() for p in layers.parameters()])
        for eager, compiled in zip(*grads):
            assert (eager - compiled).abs().max() <= 1e-5 * eager.abs().max(), "gradients differ"
        print("trained")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "trained" in done.stdout, done.stderr[-2000:]
