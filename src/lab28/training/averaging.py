"""A moving average of the weights along the run (Polyak averaging), the model that is evaluated and saved.

Why: with batch 64 and Adam at a fixed learning rate the weights of any one step are a noisy estimate. On the GSN
lab the validation top-1 of the trained weights moves by +-3 points from one epoch to the next, while an
exponential moving average of the same run's weights (decay 0.99: about the last 100 steps) was 4-5 points higher
and smoother (docs/gsn.md). The optimizer is untouched: Adam trains the weights as before and the average only rides
along, updated after every step.

Early on the average would be mostly the random start, so the decay ramps up as min(decay, (1 + t) / (10 + t))
after t updates: a short run (the quick preset, a test) still gets an average of what it trained.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


class WeightAverage:
    """An exponential moving average of `model`'s parameters and floating-point buffers."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"weight-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        source, target = model.state_dict(keep_vars=True), self.model.state_dict(keep_vars=True)
        # Floating-point entries are averaged; integer ones (BatchNorm's batch counter) are copied. The tensor lists
        # are built once: update() runs after every step, and the tensors are only ever changed in place.
        floats = [k for k in source if source[k].is_floating_point()]
        self._targets = [target[k].data for k in floats]
        self._sources = [source[k].data for k in floats]
        self._others = [(target[k].data, source[k].data) for k in source if not source[k].is_floating_point()]

    def current_decay(self) -> float:
        """The decay of the latest update: the ramp after `updates` updates, capped at `decay`."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """After an optimizer step. On the device, no host sync: it may follow a replayed CUDA graph."""
        self.updates += 1
        weight = 1.0 - self.current_decay()
        if self._targets:
            torch._foreach_lerp_(self._targets, self._sources, weight)
        for target, source in self._others:
            target.copy_(source)

    def state_dict(self) -> dict:
        return {"weights": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["weights"])
        self.updates = int(state["updates"])
