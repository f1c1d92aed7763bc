"""The GSN group convolutions' batch norm, shared over each filter's orientations and computed on the 4-D map
(lab28.workloads.gsn.orientation_norm), does what BatchNorm3d does on the (n, filters, orientations, h, w) view:
the same outputs, gradients and running statistics, in the map's own layout."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from lab28.training.device import to_channels_last
from lab28.workloads.gsn.orientation_norm import shared_batch_norm

FILTERS, ORIENTATIONS = 3, 4


def _map(layout, dtype=torch.float64, seed=0) -> torch.Tensor:
    """A (5, filters * orientations, 6, 7) map whose channels have different means and spreads."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.randn(5, FILTERS * ORIENTATIONS, 6, 7, generator=generator, dtype=torch.float64)
    y = y * torch.linspace(0.5, 3.0, FILTERS * ORIENTATIONS, dtype=torch.float64)[:, None, None] + 2.0
    return y.to(dtype).contiguous(memory_format=layout)


def _reference(norm: torch.nn.BatchNorm3d, y: torch.Tensor) -> torch.Tensor:
    n, _, h, w = y.shape
    return norm(y.reshape(n, FILTERS, ORIENTATIONS, h, w)).reshape(n, -1, h, w)


def _norms(momentum=0.1) -> tuple[torch.nn.BatchNorm3d, torch.nn.BatchNorm3d]:
    torch.manual_seed(0)
    norm = torch.nn.BatchNorm3d(FILTERS, momentum=momentum).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    return norm, copy.deepcopy(norm)


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_it_trains_and_evaluates_as_batchnorm3d_on_the_orientation_view(layout, momentum):
    """Three training steps on different batches: the same outputs, input/weight/bias gradients and running
    statistics (with BatchNorm's momentum, or its cumulative average for momentum None); then the same outputs in
    evaluation mode. A weighted loss, so that the gradients are not the ones BatchNorm cancels."""
    reference, shared = _norms(momentum)
    for step in range(3):
        y = _map(layout, seed=step)
        weights = torch.randn(y.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(10 + step))
        y_reference, y_shared = y.clone().requires_grad_(), y.clone().requires_grad_()
        expected, got = _reference(reference, y_reference), shared_batch_norm(y_shared, shared, ORIENTATIONS)
        assert (got - expected).abs().max() < 1e-12
        expected_grads = torch.autograd.grad((expected * weights).sum(), [y_reference, reference.weight,
                                                                           reference.bias])
        got_grads = torch.autograd.grad((got * weights).sum(), [y_shared, shared.weight, shared.bias])
        for e, g in zip(expected_grads, got_grads):
            assert (e - g).abs().max() < 1e-10 * max(1.0, e.abs().max().item())
        assert (shared.running_mean - reference.running_mean).abs().max() < 1e-12
        assert (shared.running_var - reference.running_var).abs().max() < 1e-12
        assert int(shared.num_batches_tracked) == int(reference.num_batches_tracked) == step + 1
    reference.eval()
    shared.eval()
    y = _map(layout, seed=7)
    assert (shared_batch_norm(y, shared, ORIENTATIONS) - _reference(reference, y)).abs().max() < 1e-12


def test_its_gradients_pass_gradcheck():
    """The hand-written backward against finite differences, for the input, the weight and the bias."""
    _, norm = _norms()
    y = _map(torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda y, weight, bias: shared_batch_norm(y, norm, ORIENTATIONS),
                                    (y, norm.weight, norm.bias))


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_the_output_and_the_input_gradient_keep_the_maps_layout(layout):
    _, norm = _norms()
    y = _map(layout).requires_grad_()
    out = shared_batch_norm(y, norm, ORIENTATIONS)
    (out * torch.randn_like(out)).sum().backward()
    assert out.is_contiguous(memory_format=layout) and y.grad.is_contiguous(memory_format=layout)


def test_a_bf16_map_is_normalised_in_bf16_with_float_statistics():
    """Under bf16 mixed precision the map comes in bf16: the output stays bf16, while the statistics are taken in
    float, as BatchNorm3d takes them from the same bf16 values."""
    reference, shared = _norms()
    reference, shared = reference.float(), shared.float()
    y = _map(torch.channels_last, dtype=torch.bfloat16)
    out = shared_batch_norm(y, shared, ORIENTATIONS)
    expected = _reference(reference, y)
    assert out.dtype == torch.bfloat16
    assert shared.running_mean.dtype == torch.float32
    assert (out.float() - expected.float()).abs().max() < 0.05  # bf16 rounding of values up to about 4
    assert torch.allclose(shared.running_mean, reference.running_mean, rtol=1e-5, atol=1e-6)
    assert torch.allclose(shared.running_var, reference.running_var, rtol=1e-5, atol=1e-6)


def test_a_one_channel_batch_gets_channels_last_strides_and_the_first_convolution_keeps_them():
    """For one channel, contiguous(memory_format=channels_last) keeps the NCHW strides, and a convolution of such a
    batch by a weight built in the step (as a group convolution's is, with NCHW strides) writes an NCHW map;
    to_channels_last sets the channels_last strides, and the convolution keeps them."""
    x = torch.rand(4, 1, 28, 28)
    weight = torch.randn(8, 1, 3, 3)
    assert x.contiguous(memory_format=torch.channels_last).stride() == (784, 784, 28, 1)
    assert not F.conv2d(x.contiguous(memory_format=torch.channels_last), weight,
                        padding=1).is_contiguous(memory_format=torch.channels_last)
    assert to_channels_last(x).stride() == (784, 1, 28, 1)
    assert torch.equal(to_channels_last(x), x)
    assert F.conv2d(to_channels_last(x), weight, padding=1).is_contiguous(memory_format=torch.channels_last)
