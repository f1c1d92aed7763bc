"""small-resnet: under the 1M-parameter budget the issue sets, three stages at 28x28, 14x14 and 7x7, residual paths.
(Forward and backward through the task are covered for every registered model in test_models.py.)"""

from __future__ import annotations

import pytest
import torch

from lab28.models import create_model
from lab28.models.registry import count_parameters
from lab28.workloads.classify.small_resnet import ResidualBlock, SmallResNet


def test_small_resnet_is_under_one_million_parameters():
    net = create_model("small-resnet", workload="classify", dropout=0.2)
    assert isinstance(net, SmallResNet)
    assert count_parameters(net) == 888_682  # the figure the docs give
    assert count_parameters(net) < 1_000_000


def test_stages_run_at_28_14_and_7_pixels():
    net = SmallResNet().eval()
    x = torch.randn(2, 1, 28, 28)
    sizes = []
    for stage in net.features:
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(32, 28, 28), (64, 14, 14), (192, 7, 7)]
    assert net.classifier(x).shape == (2, 10)


def test_residual_block_adds_its_input():
    block = ResidualBlock(8).eval()
    for p in block.body.parameters():  # a body that outputs zeros: the block must be the identity
        torch.nn.init.zeros_(p)
    x = torch.randn(3, 8, 7, 7)
    assert torch.equal(block(x), x)


def test_dropout_reaches_the_head_and_bad_values_are_refused():
    net = create_model("small-resnet", workload="classify", dropout=0.3)
    assert [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)] == [0.3]
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        SmallResNet(dropout=1.0)
