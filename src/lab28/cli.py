"""Command line: parses arguments and calls the library API. No logic of its own."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from lab28 import __version__
from lab28.errors import Lab28Error, describe_os_error


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
    from lab28.data.fetch import fetch_idx_dataset
    from lab28.data.specs import idx_spec
    from lab28.workloads.gsn.fetch import fetch_gsn

    if args.dataset == "gsn":
        path = fetch_gsn(Path(args.root) if args.root else None, url=args.url)
    else:
        path = fetch_idx_dataset(idx_spec(args.dataset), Path(args.root) if args.root else None)
    print(f"{args.dataset} ready in {path}")


def _cmd_data_show(args) -> None:
    from lab28.workloads.gsn.explore import show_gsn

    paths = show_gsn(args.root, synth=args.synth, out_dir=args.out, n=args.n, seed=args.seed, overwrite=args.overwrite)
    for p in paths:
        print(f"wrote {p}")


def _run_config(args):
    from lab28.workloads.gsn.cli_flags import apply_run_flags
    from lab28.config_io import load_config_file
    from lab28.workloads.gsn.config import config_from_dict, preset

    if getattr(args, "config", None):
        cfg = load_config_file(args.config, config_from_dict)
    else:
        cfg = preset(args.preset, args.setting or "joint")
    cfg = apply_run_flags(cfg, args)
    if args.synth:
        cfg.data.path = ""
    elif args.preset == "lab" and not cfg.data.path and not args.config:
        raise Lab28Error("the lab preset needs --data DIR (a GSN folder) or --synth for synthetic data")
    try:
        cfg.validate()
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
    return cfg


def _cmd_train(args) -> None:
    from lab28.workloads.gsn.experiment import resume_gsn, run_gsn

    if args.finish and not args.resume:
        raise Lab28Error("--finish goes with --resume RUN_DIR")
    if args.resume:
        run_dir = resume_gsn(args.resume, finish=args.finish)
    else:
        cfg = _run_config(args)
        name = args.name if args.name is not None else cfg.task.setting
        run_dir = run_gsn(cfg, args.out, name, overwrite=args.overwrite)
    final = json.loads((run_dir / "final_metrics.json").read_text())["val"]
    print(f"run folder: {run_dir}\nvalidation top-1 {final['accuracy']:.4f}, macro F1 {final['macro_f1']:.4f}, "
          f"RMSE {final['rmse']:.4f}")


def _cmd_suite(args) -> None:
    from lab28.workloads.gsn.suite import run_gsn_suite

    cfg = _run_config(args)
    name = args.name if args.name is not None else f"gsn-suite-{args.preset}"
    suite_dir = run_gsn_suite(cfg, args.out, name=name, jobs=args.jobs)
    print(f"suite folder: {suite_dir}\nreport: {suite_dir / 'report.md'}")


def _cmd_eval(args) -> None:
    from lab28.workloads.gsn.evaluate import evaluate_run

    out = evaluate_run(args.run_dir, args.data, out_path=args.out, device=args.device, tta=args.tta)
    print(f"wrote {out}")


def _cmd_predict(args) -> None:
    from lab28.workloads.gsn.predict import predict_run

    path, text, skipped = predict_run(args.run_dir, args.images, out_path=args.out, device=args.device)
    print(f"wrote {path}" if path else text, end="" if not path else "\n")
    for line in skipped:
        print(f"lab28: skipped {line}", file=sys.stderr)
    if skipped:
        raise Lab28Error(f"{len(skipped)} image(s) skipped; the predictions cover the others")


def _cmd_fashion_train(args) -> None:
    from lab28.workloads.classify.cli import run_fashion_train_from_args

    run_fashion_train_from_args(args)


def _cmd_fashion_suite(args) -> None:
    from lab28.workloads.classify.cli import run_fashion_suite_from_args

    run_fashion_suite_from_args(args)


def _cmd_fashion_report(args) -> None:
    from lab28.workloads.classify.report import write_report

    print(f"wrote {write_report(args.suite_dir)}")


def _cmd_report(args) -> None:
    """Either kind of suite: a Fashion-MNIST suite.json lists "runs" (models), a GSN one "settings"."""
    from lab28.runfiles import read_run_json

    suite_json = Path(args.suite_dir) / "suite.json"
    info = read_run_json(suite_json) if suite_json.is_file() else {}
    if "runs" in info:
        from lab28.workloads.classify.report import write_report
    else:
        from lab28.workloads.gsn.report import write_report
    print(f"wrote {write_report(args.suite_dir)}")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except None/False ones (run flags say their preset value themselves)."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


JOBS_HELP = ("{what} trained at once in worker processes (the cores are shared out; on a CPU several one-thread "
             "runs beat one run on all cores)")


def build_parser() -> argparse.ArgumentParser:
    from lab28.data.specs import IDX_DATASETS
    from lab28.workloads.gsn.cli_flags import add_run_flags

    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(prog="lab28", description="Deep-learning experiments on 28x28 images.")
    parser.add_argument("--version", action="version", version=f"lab28 {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="download, generate and look at data sets").add_subparsers(dest="data_cmd", required=True)
    fetch = data.add_parser("fetch", help="download a data set into the cache (idempotent)", formatter_class=fmt)
    fetch.add_argument("dataset", choices=["gsn", *IDX_DATASETS])
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
    src.add_argument("--root", help="GSN data folder")
    src.add_argument("--synth", action="store_true", help="use freshly generated synthetic data")
    show.add_argument("--out", required=True, help="folder for the figures")
    show.add_argument("--n", type=int, default=16, help="examples in the grids")
    show.add_argument("--seed", type=int, default=0, help="seed for example choice and augmentation")
    show.add_argument("--overwrite", action="store_true", help="replace existing figures")
    show.set_defaults(func=_cmd_data_show)

    suites = sub.add_parser("suite", help="compare settings or models and write a report: gsn | fashion")
    suite_kinds = suites.add_subparsers(dest="suite_kind", required=True, metavar="{gsn,fashion}")
    for name, func, helptext in (("train", _cmd_train, "train one GSN setting"),
                                 ("suite", _cmd_suite, "train the three GSN settings and write a report")):
        if name == "suite":
            p = suite_kinds.add_parser("gsn", help=helptext, formatter_class=fmt)
            p.add_argument("--jobs", type=int, default=1, help=JOBS_HELP.format(what="settings"))
        else:
            p = sub.add_parser(name, help=helptext, formatter_class=fmt)
        p.add_argument("--preset", choices=["lab", "quick"], default="lab" if name == "train" else "quick",
                       help="lab: the lab protocol; quick: small synthetic set, few epochs")
        p.add_argument("--synth", action="store_true", help="train on synthetic data (ignores --data)")
        p.add_argument("--config", help="a config.json (e.g. from an earlier run) instead of a preset")
        p.add_argument("--out", default="runs", help="parent folder of run folders")
        p.add_argument("--name", help="run folder name (default: the setting / gsn-suite-<preset>)")
        if name == "train":
            p.add_argument("--overwrite", action="store_true", help="replace an existing run folder of that name")
            p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (other flags ignored)")
            p.add_argument("--finish", action="store_true",
                           help="with --resume: train no further, finalize the run from its checkpoints as it stands")
        add_run_flags(p, skip=("setting",) if name == "suite" else ())
        p.set_defaults(func=func, setting=None)
    evalp = sub.add_parser("eval", help="evaluate a run's best checkpoint on a GSN data set", formatter_class=fmt)
    evalp.add_argument("run_dir")
    evalp.add_argument("--data", required=True, help="GSN data folder (every row is evaluated)")
    evalp.add_argument("--out", help="metrics JSON path (default: RUN_DIR/eval-<data name>.json)")
    evalp.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    evalp.add_argument("--tta", action="store_true", help="also report metrics averaged over the 8 flips/quarter turns")
    evalp.set_defaults(func=_cmd_eval)
    pred = sub.add_parser("predict", help="predict classes and counts for your own 28x28 PNGs", formatter_class=fmt)
    pred.add_argument("run_dir", help="a finished run folder (uses its best.pt)")
    pred.add_argument("images", nargs="+", help="PNG files or folders of PNGs")
    pred.add_argument("--out", help="CSV path (default: print to stdout)")
    pred.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    pred.set_defaults(func=_cmd_predict)
    fsuite = suite_kinds.add_parser("fashion", help="train the three Fashion-MNIST CNNs and write a report",
                                    formatter_class=fmt)
    _add_fashion_suite_parser(fsuite)
    _add_fashion_commands(sub, fmt)
    rep = sub.add_parser("report", help="(re)write report.md of a GSN or Fashion-MNIST suite folder from its run folders")
    rep.add_argument("suite_dir")
    rep.set_defaults(func=_cmd_report)
    return parser


def _add_fashion_suite_parser(parser) -> None:
    from lab28.workloads.classify.cli import add_fashion_suite_arguments

    parser.add_argument("--jobs", type=int, default=1, help=JOBS_HELP.format(what="models"))
    add_fashion_suite_arguments(parser)
    parser.set_defaults(func=_cmd_fashion_suite)


def _add_fashion_commands(sub, fmt) -> None:
    # A command group of its own: its flags (--epochs, --hflip, ...) map to Fashion-MNIST config fields.
    from lab28.workloads.classify.cli import add_fashion_train_arguments

    fashion = sub.add_parser("fashion", help="Fashion-MNIST: train one CNN or compare the three").add_subparsers(
        dest="fashion_cmd", required=True)
    train = fashion.add_parser("train", help="train one Fashion-MNIST model", formatter_class=fmt)
    add_fashion_train_arguments(train)
    train.set_defaults(func=_cmd_fashion_train)
    suite = fashion.add_parser("suite", help="train simple-cnn, spatial-attention-cnn and gated-cnn; write report.md "
                               "(the same as `lab28 suite fashion`)", formatter_class=fmt)
    _add_fashion_suite_parser(suite)
    report = fashion.add_parser("report", help="(re)write report.md of a Fashion-MNIST suite folder")
    report.add_argument("suite_dir")
    report.set_defaults(func=_cmd_fashion_report)


def _interrupt_on_sigterm(signum, frame):
    # `kill` and job schedulers send SIGTERM: end like Ctrl-C, so the run records `interrupted` and can resume.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one command. Every failure ends as one line on stderr and exit code 2 (130 for an interrupt outside a
    run); --debug shows the traceback instead."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
    elif isinstance(exc, MemoryError):
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
