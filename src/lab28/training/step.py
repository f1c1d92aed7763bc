"""One training step, run eagerly or replayed from a captured CUDA graph.

At batch 64 these models are small: on a GPU each step is ~300 short kernels and the time goes into launching
them, not into running them. A CUDA graph records the whole step once (batch gather, augmentation, forward,
loss, backward, optimizer, loss sums) and then launches it as one unit. Everything the step needs lives in
tensors that stay put, so a replay only needs the next batch's indices copied into a fixed buffer.

Rules that make the step capturable (checked by tests on CUDA, kept on every device so both paths are one code):
- no host syncs and no host-to-device copies inside the step (augmentation caches its index tensors);
- the loss sums, the step counter and the first non-finite step are device tensors updated in place;
- the optimizer is `capturable` with its learning rate as a device tensor (a scheduler fills it in place);
- random numbers come from generators registered with the graph, so each replay draws fresh ones.
A batch of another size (the last, short one of an epoch) runs eagerly on the same tensors.
"""

from __future__ import annotations

import torch

from lab28.training.config import TrainConfig
from lab28.training.device import autocast, to_channels_last

WARMUP_STEPS = 3  # eager steps before capture: lazy initialisation (optimizer state, cuBLAS) must not be captured


def graphs_supported(config: TrainConfig, device: torch.device, precision: str) -> bool:
    """Whether `config.cuda_graphs` asks for graphs and this run can have them."""
    if not config.cuda_graphs or device.type != "cuda":
        return False
    # fp16 needs the grad scaler's host-side logic; torch.compile makes its own graphs.
    return precision != "fp16" and not config.compile


class TrainStep:
    """Runs training steps and keeps, on the device, the sums of the loss parts over the epoch so far."""

    def __init__(self, model, task, optimizer, scaler, train_x, train_y, generator, config: TrainConfig,
                 device: torch.device, precision: str, use_graph: bool = False, average=None):
        self.model, self.task, self.optimizer, self.scaler = model, task, optimizer, scaler
        self.average = average  # a WeightAverage updated after every step (outside the graph), or None
        self.train_x, self.train_y, self.generator = train_x, train_y, generator
        self.config, self.device, self.precision = config, device, precision
        self.use_graph = use_graph
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_idx: torch.Tensor | None = None
        self.warmup_left = WARMUP_STEPS
        self.sums: dict[str, torch.Tensor] = {}
        self.steps_done = torch.zeros((), dtype=torch.long, device=device)
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)  # first non-finite step, -1: none

    def set_train_data(self, train_x: torch.Tensor, train_y: torch.Tensor) -> None:
        """Train on other tensors from now on (a workload's fresh data for each epoch). A captured graph reads the
        tensors it was captured with, so after capture the new ones are copied into those, in place: they must
        have the same shape and dtype (the trainer asks for the same number of images every epoch)."""
        if self.graph is None:
            self.train_x, self.train_y = train_x, train_y
            return
        if train_x.shape != self.train_x.shape or train_y.shape != self.train_y.shape:
            raise ValueError(f"new training tensors {tuple(train_x.shape)}/{tuple(train_y.shape)} do not fit the "
                             f"captured ones {tuple(self.train_x.shape)}/{tuple(self.train_y.shape)}")
        self.train_x.copy_(train_x)
        self.train_y.copy_(train_y)

    def start_epoch(self) -> None:
        for value in self.sums.values():
            value.zero_()
        self.steps_done.zero_()
        self.first_bad.fill_(-1)

    def __call__(self, idx: torch.Tensor) -> None:
        self._step(idx)
        if self.average is not None:
            self.average.update()

    def _step(self, idx: torch.Tensor) -> None:
        if not self.use_graph or idx.numel() != self.config.batch_size:
            self._eager(idx)
        elif self.graph is not None:
            self.static_idx.copy_(idx)
            self.graph.replay()
        elif self.warmup_left > 0:
            self.warmup_left -= 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                self._eager(idx)
            torch.cuda.current_stream(self.device).wait_stream(side)
        else:
            self._capture(idx)
            self.graph.replay()

    def _eager(self, idx: torch.Tensor) -> None:
        # Once captured, the gradients are the graph's own buffers: zero them in place, never drop them.
        self.optimizer.zero_grad(set_to_none=self.graph is None)
        self._compute(idx)

    def _capture(self, idx: torch.Tensor) -> None:
        self.static_idx = idx.clone()
        self.optimizer.zero_grad(set_to_none=True)  # backward inside the capture allocates them in the graph
        graph = torch.cuda.CUDAGraph()
        if self.generator is not None and self.generator.device.type == "cuda":
            graph.register_generator_state(self.generator)
        torch.cuda.synchronize(self.device)
        with torch.cuda.graph(graph):
            self._compute(self.static_idx)
        self.graph = graph

    def _compute(self, idx: torch.Tensor) -> None:
        cfg = self.config
        x, t = self.task.prepare_batch(self.train_x[idx], self.train_y[idx], train=True, generator=self.generator)
        if cfg.channels_last:
            x = to_channels_last(x)
        # The autocast weight cache would hand a captured graph stale casts: off whenever graphs are on.
        with autocast(self.device, self.precision, cache=not self.use_graph):
            out = self.model(x)
        loss, parts = self.task.loss(out, t)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            n = idx.numel()
            for key, value in {"loss": loss, **parts}.items():
                if key not in self.sums:
                    self.sums[key] = torch.zeros((), dtype=torch.float32, device=self.device)
                self.sums[key].add_(value.detach().float() * n)
            self.steps_done.add_(1)
            bad = (self.first_bad < 0) & ~torch.isfinite(loss.detach())
            self.first_bad.copy_(torch.where(bad, self.steps_done, self.first_bad))
