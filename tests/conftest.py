from pathlib import Path

import pytest

from postgres_server import postgres_url  # noqa: F401  (fixture: a PostgreSQL server on loopback)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Keep every test's caches and downloads out of the user's home."""
    monkeypatch.setenv("LAB28_DATA", str(tmp_path / "lab28-cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def small_gsn(tmp_path_factory) -> Path:
    """A 60-image synthetic GSN set in the official layout (root/data/labels.csv + PNGs)."""
    from lab28.workloads.gsn.synth import synth_gsn

    root = tmp_path_factory.mktemp("gsn-small")
    synth_gsn(root, n=60, seed=7)
    return root


def copy_dataset(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lab28-cache-*"))
    return dst


def assert_one_line_error(err: str, fragment: str) -> None:
    """What every refused input must give on stderr: one `lab28: error:` line holding `fragment`, no traceback."""
    assert fragment in err, err
    assert err.startswith("lab28: error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def train_interrupted_in_epoch_two(monkeypatch, argv: list[str]) -> None:
    """`lab28 <argv>` with training interrupted during epoch 2 (as Ctrl-C would): it exits 2 with epoch 1 in
    last.pt. The trainer is itself again afterwards."""
    import lab28.training.trainer as trainer
    from lab28.cli import main

    original = trainer.run_epoch

    def stop_in_epoch_two(train_step, scheduler, epoch, steps, **options):
        if epoch == 2:
            raise trainer.TrainingInterrupted("interrupted during epoch 2; epochs 1..1 are saved")
        return original(train_step, scheduler, epoch, steps, **options)

    monkeypatch.setattr(trainer, "run_epoch", stop_in_epoch_two)
    try:
        assert main(argv) == 2
    finally:
        monkeypatch.setattr(trainer, "run_epoch", original)
