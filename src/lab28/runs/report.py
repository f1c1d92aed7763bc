"""The suite report page, built once for every workload: the workload says what its runs show, the engine lays out
the page.

report.md, top to bottom: the title; a banner when a run used the workload's demonstration preset (it is not the
experiment, and which command runs the experiment); the summary (the workload's: the best setting or model, its key
numbers, the chance level), with the workload's introduction (data, test set), the runs that started from an earlier
run's weights, and the environment line; a table of contents linking every `##` section; the workload's sections
(tables, notes, figures); every run's configuration.
report.html beside it is the same page with the figures inlined (lab28.html_report), one file to share. Nothing is
written until every input has been read and checked (the workload's report_page reads the suite through
lab28.runs.files.read_suite), so a bad run folder leaves no half-written report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lab28.html_report import heading_anchors, write_html_report
from lab28.io_utils import atomic_write_text
from lab28.runs.files import SuiteFiles, environment_lines


@dataclass
class ReportPage:
    """What a workload's report says about a suite it has read and checked; Markdown lines throughout."""

    suite: SuiteFiles
    title: str
    summary: list[str]  # the best setting or model, its key numbers, the chance level: a few lines
    intro: list[str]  # what the data was (and the test set), shown under the summary
    sections: list[str]  # the body: `##` sections with tables, notes and figures


def write_suite_report(workload, suite_dir: str | Path) -> Path:
    """Write report.md and report.html of a suite folder of `workload`'s runs; returns report.md's path."""
    page = workload.report_page(Path(suite_dir))
    suite = page.suite
    lines = [f"# {page.title}", "", *demo_banner(workload, suite.configs)]
    lines += ["## Summary", "", *page.summary, "", *page.intro, *start_lines(suite.configs)]
    for line in environment_lines({name: summary["env"] for name, summary in suite.summaries.items()}):
        lines += [line, ""]
    body = [*page.sections, "## Configuration", ""]
    for name, config in suite.configs.items():
        body += [f"<details><summary>{name}</summary>", "", "```json", json.dumps(config, indent=2), "```", "",
                 "</details>", ""]
    lines += table_of_contents(lines + body) + body
    path = suite.folder / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    write_html_report(path)
    return path


def demo_banner(workload, configs: dict[str, dict]) -> list[str]:
    """A warning under the title when any run was built from the workload's demonstration preset: its numbers
    show the pipeline at work, not what the experiment reaches, and a reader skimming for results must not take them
    as such."""
    demo = [name for name, config in configs.items() if config.get("preset") == workload.demo_preset]
    if not demo:
        return []
    which = "every run" if len(demo) == len(configs) else "runs " + ", ".join(demo)
    command = workload.experiment_command(configs[demo[0]])
    return [f"> **The `{workload.demo_preset}` preset ({which}): a small demonstration run, not the experiment.** "
            f"Few images and epochs: its numbers show the pipeline at work and a model learning, not what the "
            f"experiment reaches. "
            f"The experiment: {command}.", ""]


def start_lines(configs: dict[str, dict]) -> list[str]:
    """Which runs started from an earlier run's weights (train.init_from), one line per source: their numbers are
    those of a fine-tuning, not of training from a random start."""
    sources: dict[str, list[str]] = {}
    for name, config in configs.items():
        train = config.get("train")
        source = train.get("init_from") if isinstance(train, dict) else None
        if isinstance(source, str) and source:
            sources.setdefault(source, []).append(name)
    lines = []
    for source, names in sources.items():
        which = "Every run" if len(names) == len(configs) else f"Run{'s' * (len(names) > 1)} {', '.join(names)}"
        lines += [f"{which} started from the weights of `{source}` (train.init_from); optimizer, schedule and "
                  "epochs started afresh.", ""]
    return lines


def table_of_contents(lines: list[str]) -> list[str]:
    """A list of links to every `##` section, by the anchors report.html gives its headings (GitHub's too)."""
    entries = [f"- [{text}](#{anchor})" for level, text, anchor in heading_anchors(lines) if level == 2]
    return [*entries, ""] if entries else []
