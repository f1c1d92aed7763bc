"""Run several independent trainings at once in worker processes (the suites' `--jobs`)."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from lab28.errors import Lab28Error


def check_jobs(jobs: int) -> None:
    """Refuse a --jobs below one before anything is loaded or created."""
    if jobs < 1:
        raise Lab28Error(f"--jobs must be at least 1, got {jobs}")


def threads_per_worker(jobs: int, runs: int) -> int:
    """CPU threads for each of min(jobs, runs) concurrent runs: the cores shared out, at least one.

    On a CPU, several one-thread runs get more done than one run spread over all cores (less synchronisation);
    on a GPU the threads only feed it, so the same split does no harm.
    """
    return max(1, (os.cpu_count() or 1) // max(1, min(jobs, runs)))


def share_threads(train_configs: Sequence[Any], jobs: int) -> None:
    """Give each run's TrainConfig that left `threads` at 0 (torch's default) its share of the cores."""
    for config in train_configs:
        if config.threads == 0:
            config.threads = threads_per_worker(jobs, len(train_configs))


def run_in_workers(func: Callable[..., Any], calls: Sequence[tuple], jobs: int) -> list[Any]:
    """func(*call) for every call, `jobs` at a time in fresh processes; results in call order.

    A worker's exception (a Lab28Error, say) is re-raised here: runs not yet started are cancelled, the ones
    already running end first (on Ctrl-C or SIGTERM they are interrupted instead, and can be resumed).
    `func` must be importable by name (a module-level function), its arguments picklable.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools (and a CUDA context)
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(calls))), mp_context=ctx) as pool:
        futures = [pool.submit(func, *call) for call in calls]
        try:
            return [future.result() for future in futures]
        except BrokenProcessPool:
            raise Lab28Error("a worker process died (killed, or out of memory); the runs it and the others had "
                             "started are left unfinished") from None
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                # Running workers get the Ctrl-C a terminal would have sent them (a SIGTERM reaches only this
                # process), so they record `interrupted` and stop instead of training on.
                import signal

                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    if process.is_alive():
                        os.kill(process.pid, signal.SIGINT)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
