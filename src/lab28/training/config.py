"""Training configuration (engineering only: nothing here knows about shapes or clothes)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lab28.config_io import check_finite, check_seed
from lab28.training.device import PRECISIONS
from lab28.training.early_stopping import EarlyStoppingConfig

OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("none", "cosine", "onecycle")


@dataclass
class TrainConfig:
    epochs: int = 100  # upper bound; early stopping usually ends sooner
    batch_size: int = 64
    eval_batch_size: int = 1000
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "none"  # none (constant lr) | cosine (to 0 over `epochs`) | onecycle; stepped every batch
    warmup_epochs: float = 0.0  # linear warm-up from lr/10 before the schedule (epochs, may be fractional)
    seed: int = 1  # torch.manual_seed: weights, shuffling and augmentation all follow from it
    # An earlier run's folder or a lab28 .pt file whose model weights replace the random start ("" = random start;
    # lab28.runs.init_from). Only the weights: optimizer, schedule and epochs start afresh.
    init_from: str = ""
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (auto: bf16 where the hardware has it, else fp32)
    channels_last: bool = True  # faster convolutions on CPU and tensor-core GPUs
    compile: bool = False  # torch.compile the model (opt-in: slower to start, not always faster)
    # On CUDA, replay each training step from one captured graph (not with fp16 or compile). Opt-in until the
    # CUDA tests (tests/test_cuda_graphs.py), which skip without a GPU, have passed on one.
    cuda_graphs: bool = False
    # Evaluate and save an exponential moving average of the weights (decay per step; 0 = the trained weights
    # themselves). The optimizer is unchanged: see lab28.training.averaging.
    weight_average: float = 0.0
    threads: int = 0  # CPU threads for torch (0 = leave torch's default: one per physical core)
    log_every: int = 25  # steps between progress-bar updates (each one syncs with the device)
    progress: bool = True
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)

    def validate(self) -> None:
        check_finite(self)
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        for name in ("batch_size", "eval_batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        check_seed("seed", self.seed)
        if not self.lr > 0:
            raise ValueError(f"learning rate must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not 0.0 <= self.weight_average < 1.0:
            raise ValueError(f"weight_average must be in [0, 1) (0 = off), got {self.weight_average}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        self.early_stopping.validate()


# CLI flag -> (field path under the run config's `train`, help text with unit); shared by every workload's CLI.
TRAIN_FLAGS: dict[str, tuple[str, str]] = {
    "epochs": ("train.epochs", "maximum epochs"),
    "batch-size": ("train.batch_size", "training batch size (images)"),
    "eval-batch-size": ("train.eval_batch_size", "evaluation batch size (images)"),
    "optimizer": ("train.optimizer", "adam | adamw"),
    "lr": ("train.lr", "peak learning rate"),
    "weight-decay": ("train.weight_decay", "weight decay"),
    "scheduler": ("train.scheduler", "none | cosine | onecycle (stepped every batch)"),
    "warmup-epochs": ("train.warmup_epochs", "linear warm-up (epochs, may be fractional)"),
    "seed": ("train.seed", "torch.manual_seed for weights, shuffling and augmentation"),
    "init-from": ("train.init_from", "start from the weights of an earlier run: its folder or a .pt checkpoint "
                                     "(model weights only; optimizer, schedule and epochs start afresh)"),
    "device": ("train.device", "auto | cpu | cuda | cuda:N | mps"),
    "precision": ("train.precision", "auto | fp32 | bf16 | fp16"),
    "channels-last": ("train.channels_last", "channels_last memory format (true/false)"),
    "compile": ("train.compile", "torch.compile the model (true/false)"),
    "cuda-graphs": ("train.cuda_graphs", "on CUDA, capture the training step as one CUDA graph (true/false; opt-in)"),
    "weight-average": ("train.weight_average",
                       "evaluate and save a moving average of the weights: decay per step (0 = off)"),
    "threads": ("train.threads", "CPU threads, 0 = torch's default"),
    "progress": ("train.progress", "progress bar and one line per epoch (true/false)"),
    "monitor": ("train.early_stopping.monitor", "metric watched by early stopping and best.pt"),
    "mode": ("train.early_stopping.mode", "min | max"),
    "patience": ("train.early_stopping.patience", "epochs without improvement before stopping"),
    "min-delta": ("train.early_stopping.min_delta", "smallest change that counts as an improvement"),
}
