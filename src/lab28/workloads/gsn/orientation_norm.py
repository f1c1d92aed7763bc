"""Batch normalisation whose statistics each filter shares over its orientations, computed on the 4-D map as it is.

A group convolution's output holds filter f in orientation g at channel index `orientations * f + g`. Sharing a
filter's statistics over its orientations keeps the layer equivariant in training mode. BatchNorm3d on the
(n, filters, orientations, h, w) view of the map does that, but on a channels_last map the view is in no layout
its kernels take: it copies the map to NCHW, and its NCHW output makes the next convolution reorder its input too.
On a 2-core CPU that came to about a quarter of the free model's training step (benchmarks/norm_share.py).

Here the same arithmetic is made of PyTorch's own batch-norm kernels, which run in one pass on either 4-D layout
and keep it: per-channel statistics (batch_norm_update_stats), pooled over each filter's orientations; the
normalisation as an affine batch norm with those pooled statistics; in the backward, per-channel sums of the
gradient and of the gradient times the normalised input (native_batch_norm_backward's weight and bias gradients),
pooled again, and the input gradient as two affine batch norms. Written by hand as an autograd Function because
autograd takes the statistics an affine batch norm is given as constants, where the training-mode gradient needs
their dependence on the map; torch.compile's fused version of the same statistics was slower than BatchNorm3d
(docs/gsn.md, "On a CPU with bf16 units but no AMX").
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _per_channel(values: torch.Tensor, orientations: int) -> torch.Tensor:
    """A per-filter vector repeated for each of its orientations (channel index orientations * f + g)."""
    return values.repeat_interleave(orientations)


class _SharedBatchNorm(torch.autograd.Function):
    """Training-mode batch norm of a 4-D map with statistics shared over each filter's `orientations` channels.
    Returns the normalised map (in the map's layout and dtype) and each filter's batch mean and biased variance."""

    @staticmethod
    def forward(ctx, y, weight, bias, eps: float, orientations: int):
        # Float running buffers make the statistics of a bf16 map come back in float (momentum 0: left unchanged).
        column_mean, column_var = torch.batch_norm_update_stats(y, weight.new_zeros(y.shape[1]),
                                                                weight.new_ones(y.shape[1]), 0.0)
        column_mean = column_mean.view(-1, orientations)
        mean = column_mean.mean(1)
        # the law of total variance, free of the cancellation in E[y^2] - mean^2
        variance = column_var.view(-1, orientations).mean(1) + (column_mean - mean[:, None]).square().mean(1)
        invstd = torch.rsqrt(variance + eps)
        scale = weight * invstd
        out = F.batch_norm(y, torch.zeros_like(column_var), torch.ones_like(column_var),
                           _per_channel(scale, orientations), _per_channel(bias - mean * scale, orientations),
                           False, 0.0, 0.0)
        ctx.save_for_backward(y, weight, mean, invstd)
        ctx.orientations = orientations
        ctx.mark_non_differentiable(mean, variance)  # they only feed the running averages
        return out, mean, variance

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_variance):
        y, weight, mean, invstd = ctx.saved_tensors
        orientations = ctx.orientations
        count = y.numel() // weight.numel()
        layout = torch.channels_last if y.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        grad_out = grad_out.contiguous(memory_format=layout)
        ones = weight.new_ones(y.shape[1])
        # Per channel: the sum of grad * (y - mean) * invstd and the sum of grad, with the shared mean and invstd.
        _, column_grad_normalised, column_grad = torch.ops.aten.native_batch_norm_backward(
            grad_out, y, ones, None, None, _per_channel(mean, orientations), _per_channel(invstd, orientations),
            True, 0.0, [False, True, True])
        grad_weight = column_grad_normalised.view(-1, orientations).sum(1)
        grad_bias = column_grad.view(-1, orientations).sum(1)
        # grad_y = a * grad - b * y + c per filter, a batch norm's input gradient written out
        a = weight * invstd
        b = a * invstd * grad_weight / count
        c = b * mean - a * grad_bias / count
        zeros = torch.zeros_like(ones)
        grad_y = F.batch_norm(grad_out, zeros, ones, _per_channel(a, orientations), None, False, 0.0, 0.0)
        grad_y.add_(F.batch_norm(y, zeros, ones, _per_channel(-b, orientations), _per_channel(c, orientations),
                                 False, 0.0, 0.0))
        return grad_y, grad_weight, grad_bias, None, None


def shared_batch_norm(y: torch.Tensor, norm: nn.BatchNorm3d, orientations: int) -> torch.Tensor:
    """`norm` (one parameter and running statistic per filter) applied to the 4-D map `y`, whose channel
    orientations * f + g is filter f in orientation g: what norm does to y's (n, filters, orientations, h, w) view,
    running statistics included, in y's own layout."""
    if not (norm.training or norm.running_mean is None):
        return F.batch_norm(y, _per_channel(norm.running_mean, orientations),
                            _per_channel(norm.running_var, orientations), _per_channel(norm.weight, orientations),
                            _per_channel(norm.bias, orientations), False, 0.0, norm.eps)
    out, mean, variance = _SharedBatchNorm.apply(y, norm.weight, norm.bias, norm.eps, orientations)
    if norm.training and norm.track_running_stats:
        update_running_statistics(norm, mean, variance, y.numel() / norm.num_features)
    return out


def update_running_statistics(norm: nn.modules.batchnorm._BatchNorm, mean: torch.Tensor, variance: torch.Tensor,
                              count: float) -> None:
    """What a BatchNorm layer's training step does to its running averages, for a norm computed outside it:
    `mean` and the biased `variance` over `count` values per channel (the running variance is the unbiased one)."""
    with torch.no_grad():
        norm.num_batches_tracked.add_(1)
        momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
        norm.running_mean.lerp_(mean, momentum)
        norm.running_var.lerp_(variance * count / (count - 1), momentum)
