"""Command line: parses arguments and calls the library API. No logic of its own.

Verb first, the same verbs for every data set:
    lab28 train DATASET [flags] | lab28 train --resume RUN_DIR [--finish]
    lab28 suite DATASET [flags]
    lab28 eval RUN_DIR --data DIR | lab28 predict RUN_DIR IMAGES... | lab28 report DIR
    lab28 data fetch|show|synth DATASET
FLAG_MODULES below is the CLI's table of workloads: the module holding each workload's flags (add_train_arguments,
add_suite_arguments, config_from_args, default_run_name, suite_runs, summary_line, SUITE_LIST_KEY).
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from pathlib import Path

from lab28 import __version__
from lab28.errors import Lab28Error, describe_os_error
from lab28.workloads import DATASETS

# workload -> the module of its CLI flags; the data sets and their workloads are lab28.workloads.DATASETS
FLAG_MODULES = {"gsn": "lab28.workloads.gsn.cli_flags", "classify": "lab28.workloads.classify.cli"}


def _flags(dataset: str):
    return importlib.import_module(FLAG_MODULES[DATASETS[dataset][0]])


def _workload(dataset: str):
    from lab28.workloads import get_workload

    return get_workload(DATASETS[dataset][0])


# -- data -------------------------------------------------------------------------------------------------------
def _cmd_data_synth(args) -> None:
    from lab28.workloads.gsn.synth import synth_gsn

    if args.n < 1:
        raise Lab28Error(f"--n must be at least 1, got {args.n}")
    if not 1 <= args.min_count <= 5:
        raise Lab28Error(f"--min-count must be between 1 and 5 (the other type gets 10 minus it), got {args.min_count}")
    out = synth_gsn(args.out, n=args.n, seed=args.seed, count_range=(args.min_count, 10 - args.min_count),
                    overwrite=args.overwrite)
    print(f"wrote {args.n} synthetic GSN images to {out}")


def _cmd_data_fetch(args) -> None:
    root = Path(args.root) if args.root else None
    if args.dataset == "gsn":
        from lab28.workloads.gsn.fetch import fetch_gsn

        path = fetch_gsn(root, url=args.url)
    else:
        from lab28.data.fetch import fetch_idx_dataset
        from lab28.data.specs import idx_spec

        path = fetch_idx_dataset(idx_spec(args.dataset), root)
    print(f"{args.dataset} ready in {path}")


def _cmd_data_show(args) -> None:
    from lab28.workloads.gsn.explore import augment_config, show_gsn

    paths = show_gsn(args.data, synth=args.synth, out_dir=args.out, n=args.n, seed=args.seed,
                     overwrite=args.overwrite, augment=augment_config(args.preset, args.config))
    for p in paths:
        print(f"wrote {p}")


# -- train, suite ------------------------------------------------------------------------------------------------
def _cmd_train(args) -> None:
    from lab28.runs.lifecycle import resume_run, train_run

    if args.finish and not args.resume:
        raise Lab28Error("--finish goes with --resume RUN_DIR")
    if args.resume:
        run_dir = resume_run(args.resume, finish=args.finish)
        from lab28.workloads import workload_of_run

        summary = _summary_for(workload_of_run(run_dir).name)
    else:
        flags = _flags(args.dataset)
        config = flags.config_from_args(args, args.dataset)
        name = args.name if args.name is not None else flags.default_run_name(config)
        run_dir = train_run(_workload(args.dataset), config, args.out, name, overwrite=args.overwrite)
        summary = flags.summary_line
    final = json.loads((run_dir / "final_metrics.json").read_text())
    print(f"run folder: {run_dir}\n{summary(final)}")


def _summary_for(workload_name: str):
    return importlib.import_module(FLAG_MODULES[workload_name]).summary_line


def _cmd_suite(args) -> None:
    from lab28.runs.suite import run_suite

    flags = _flags(args.dataset)
    config = flags.config_from_args(args, args.dataset)
    runs = flags.suite_runs(args, config)
    name = args.name if args.name is not None else f"{args.dataset}-suite-{args.preset}"
    suite_dir = run_suite(_workload(args.dataset), runs, args.out, name, jobs=args.jobs,
                          list_key=flags.SUITE_LIST_KEY)
    print(f"suite folder: {suite_dir}\nreport: {suite_dir / 'report.html'} (open it in a browser; report.md beside it)")


def _cmd_sweep(args) -> None:
    from lab28.runs.sweep import run_sweep
    from lab28.runs.sweep_space import read_space

    space = read_space(args.space)  # before the config: a bad space file is the likelier mistake
    config = _flags(args.dataset).config_from_args(args, args.dataset)
    seeds = _seed_list(args.seeds)
    folder = run_sweep(_workload(args.dataset), args.dataset, config, space, args.trials, args.out, study=args.study,
                       storage=args.storage, pruner=args.pruner, jobs=args.jobs, repeat_best=args.repeat_best,
                       seeds=seeds, command=" ".join(["lab28", *_argv_for_record(args)]))
    print(f"sweep folder: {folder}\nreport: {folder / 'report.html'}")


def _seed_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise Lab28Error(f"--seeds takes whole numbers separated by commas, e.g. 1,2,3; got {text!r}") from None


def _argv_for_record(args) -> list[str]:
    """The command line as typed, with the --storage value (it may hold a password) masked however it was spelled
    (--storage URL, --storage=URL, an abbreviation such as --stor URL)."""
    secret = args.storage
    return [arg if not secret or secret not in arg else arg.replace(secret, "***") for arg in args.argv]


# -- eval, predict, report ---------------------------------------------------------------------------------------
def _cmd_eval(args) -> None:
    from lab28.runs.model import evaluate_run

    out, result = evaluate_run(args.run_dir, args.data, out_path=args.out, device=args.device, tta=args.tta)
    print(f"wrote {out}\n{_metrics_line(result['metrics'])}"
          + (f"\nwith TTA: {_metrics_line(result['metrics_tta'])}" if result.get("metrics_tta") else ""))


def _metrics_line(metrics: dict) -> str:
    """One line of the headline metrics a run reports (top-1, macro F1, and count RMSE where there are counts)."""
    shown = [("top-1", "accuracy"), ("macro F1", "macro_f1"), ("count RMSE", "rmse")]
    return ", ".join(f"{label} {metrics[key]:.4f}" for label, key in shown if key in metrics)


def _cmd_predict(args) -> None:
    from lab28.runs.predict import predict_files

    path, text, skipped = predict_files(args.run_dir, args.images, out_path=args.out, device=args.device)
    print(f"wrote {path}" if path else text, end="" if not path else "\n")
    for line in skipped:
        print(f"lab28: skipped {line}", file=sys.stderr)
    if skipped:
        raise Lab28Error(f"{len(skipped)} image(s) skipped; the predictions cover the others")


def _cmd_report(args) -> None:
    """A suite folder of any workload (its report), or one run folder (its figures, redrawn)."""
    from lab28.runs.suite import write_report

    print(f"wrote {write_report(args.suite_dir)}")


# -- the parser --------------------------------------------------------------------------------------------------
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except None/False ones (run flags say their preset value themselves)."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


JOBS_HELP = ("runs trained at once in worker processes (the cores are shared out; on a CPU several one-thread "
             "runs beat one run on all cores)")


def build_parser() -> argparse.ArgumentParser:
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(prog="lab28", description="Deep-learning experiments on 28x28 images.")
    parser.add_argument("--version", action="version", version=f"lab28 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one run: lab28 train DATASET [flags]")
    train_sets = train.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    suite = sub.add_parser("suite", help="train a comparison (settings or models) and write a report")
    suite_sets = suite.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for dataset in DATASETS:
        flags = _flags(dataset)
        p = train_sets.add_parser(dataset, help=f"train one run on {dataset}", formatter_class=fmt)
        p.add_argument("--out", default="runs", help="parent folder of run folders")
        p.add_argument("--name", help="run folder name (default: the setting or model)")
        p.add_argument("--overwrite", action="store_true",
                       help="replace an existing run folder of that name once the new run has finished")
        p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (other flags ignored)")
        p.add_argument("--finish", action="store_true",
                       help="with --resume: train no further, finalize the run from its checkpoints as it stands")
        flags.add_train_arguments(p)
        p.set_defaults(func=_cmd_train)
        p = suite_sets.add_parser(dataset, help=f"the {dataset} comparison and its report", formatter_class=fmt)
        p.add_argument("--out", default="runs", help="parent folder of suite folders")
        p.add_argument("--name", help="suite folder name (default: <dataset>-suite-<preset>)")
        p.add_argument("--jobs", type=int, default=1, help=JOBS_HELP)
        flags.add_suite_arguments(p)
        p.set_defaults(func=_cmd_suite)

    sweep = sub.add_parser("sweep", help="a hyper-parameter search on Optuna; every trial a run folder")
    sweep_sets = sweep.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for dataset in DATASETS:
        p = sweep_sets.add_parser(dataset, help=f"search {dataset} configurations", formatter_class=fmt)
        p.add_argument("--space", required=True, help="the search space: a YAML or JSON file (docs/sweeps.md)")
        p.add_argument("--trials", type=int, required=True, help="trials the study holds when done (a re-run "
                       "continues it)")
        p.add_argument("--study", help="study name, also the sweep folder's name (default: <dataset>-sweep)")
        p.add_argument("--storage", help="SQLAlchemy URL of a database shared by every worker, e.g. "
                       "postgresql://user:pass@host/db (default: $LAB28_STORAGE, else SQLite in the sweep folder)")
        p.add_argument("--out", default="runs", help="parent folder of the sweep folder")
        p.add_argument("--jobs", type=int, default=1, help="worker processes on this machine, each taking trials")
        p.add_argument("--pruner", choices=("median", "halving", "none"), default="median",
                       help="stop unpromising trials early, from the objective per epoch")
        p.add_argument("--repeat-best", type=int, default=0, metavar="K",
                       help="after the trials: re-run the K best configurations and the preset over --seeds")
        p.add_argument("--seeds", default="1,2,3", help="seeds of the repeats, comma-separated")
        _flags(dataset).add_train_arguments(p)  # the preset, the data and every config flag: fixed for all trials
        p.set_defaults(func=_cmd_sweep)

    evalp = sub.add_parser("eval", help="evaluate a run's best weights on a labelled data folder", formatter_class=fmt)
    evalp.add_argument("run_dir")
    evalp.add_argument("--data", required=True, help="data folder of the run's kind (every labelled image is used)")
    evalp.add_argument("--out", help="metrics JSON path (default: RUN_DIR/eval-<data name>.json)")
    evalp.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    evalp.add_argument("--tta", action="store_true", help="GSN: also metrics averaged over the 8 flips/quarter turns")
    evalp.set_defaults(func=_cmd_eval)
    pred = sub.add_parser("predict", help="predict on your own 28x28 PNGs with a finished run", formatter_class=fmt)
    pred.add_argument("run_dir", help="a finished run folder (uses its best.pt)")
    pred.add_argument("images", nargs="+", help="PNG files or folders of PNGs")
    pred.add_argument("--out", help="CSV path (default: print to stdout)")
    pred.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    pred.set_defaults(func=_cmd_predict)
    rep = sub.add_parser("report", help="(re)write report.md and report.html of a suite or sweep folder, or a run's figures")
    rep.add_argument("suite_dir")
    rep.set_defaults(func=_cmd_report)
    _add_data_commands(sub, fmt)
    return parser


def _add_data_commands(sub, fmt) -> None:
    data = sub.add_parser("data", help="download, generate and look at data sets").add_subparsers(
        dest="data_cmd", required=True)
    fetch = data.add_parser("fetch", help="download a data set into the cache (idempotent)", formatter_class=fmt)
    fetch.add_argument("dataset", choices=list(DATASETS))
    fetch.add_argument("--root", help="cache folder (default: $LAB28_DATA or ~/.cache/lab28)")
    fetch.add_argument("--url", help="GSN archive URL (default: the official one)")
    fetch.set_defaults(func=_cmd_data_fetch)
    synth = data.add_parser("synth", help="write a synthetic data set in the official layout", formatter_class=fmt)
    synth.add_argument("dataset", choices=["gsn"])
    synth.add_argument("--n", type=int, default=10000, help="number of images")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same images)")
    synth.add_argument("--min-count", type=int, default=2, help="smallest count of a present type (real data: 2)")
    synth.add_argument("--out", required=True, help="output folder (gets data/labels.csv + data/img_*.png)")
    synth.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")
    synth.set_defaults(func=_cmd_data_synth)
    show = data.add_parser("show", help="exploration figures: class occurrence, examples, augmented examples",
                           formatter_class=fmt)
    show.add_argument("dataset", choices=["gsn"])
    src = show.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", "--root", dest="data", help="GSN data folder")
    src.add_argument("--synth", action="store_true", help="use freshly generated synthetic data")
    show.add_argument("--out", required=True, help="folder for the figures")
    show.add_argument("--n", type=int, default=16, help="examples in the grids")
    show.add_argument("--seed", type=int, default=0, help="seed for example choice and augmentation")
    augment = show.add_mutually_exclusive_group()
    augment.add_argument("--preset", choices=_flags("gsn").PRESETS, default="lab",
                         help="whose augmentation examples_augmented.png shows")
    augment.add_argument("--config",
                         help="a config.json (e.g. a run's) whose augmentation examples_augmented.png shows")
    show.add_argument("--overwrite", action="store_true", help="replace existing figures")
    show.set_defaults(func=_cmd_data_show)


def old_spellings(argv: list[str]) -> list[str]:
    """The spellings of earlier versions, as aliases: bare `lab28 train --flags` trains GSN, `lab28 fashion train`
    is `lab28 train fashion-mnist`, `lab28 suite fashion` is `lab28 suite fashion-mnist`."""
    argv = list(argv)
    start = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))  # after --debug and the like
    return argv[:start] + _verb_aliases(argv[start:])


def _verb_aliases(argv: list[str]) -> list[str]:
    if argv[:1] == ["fashion"] and len(argv) > 1:
        verb, rest = argv[1], argv[2:]
        return ["report", *rest] if verb == "report" else [verb, "fashion-mnist", *rest]
    if argv[:1] == ["train"] and (len(argv) == 1 or argv[1].startswith("-")) and argv[1:2] not in (["-h"], ["--help"]):
        return ["train", "gsn", *argv[1:]]
    if argv[:2] == ["suite", "fashion"]:
        return ["suite", "fashion-mnist", *argv[2:]]
    return argv


def _interrupt_on_sigterm(signum, frame):
    # `kill` and job schedulers send SIGTERM: end like Ctrl-C, so the run records `interrupted` and can resume.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure ends as one line on stderr and exit code 2 (130 for an interrupt outside a
    run); --debug shows the traceback instead."""
    parser = build_parser()
    argv = old_spellings(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # what was typed, for records such as a sweep's command
    previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm) if _main_thread() else None
    try:
        args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("lab28: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"lab28: error: {error_line(exc)}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def error_line(exc: Exception) -> str:
    """The one line a user sees for an exception: ours say it themselves, the system's are put into words, and
    anything else is named as what it is, a bug, with the way to see more."""
    if isinstance(exc, Lab28Error):
        text = str(exc)
    elif isinstance(exc, OSError):
        text = describe_os_error(exc)
    elif isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":  # torch's, on a GPU
        text = "out of memory (try a smaller --batch-size or data set)"
    else:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = f"unexpected {type(exc).__name__}: {first} (a bug in lab28; run with --debug for the traceback)"
    return " ".join(text.split())  # one line, whatever the message held


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
