"""The suite report page, built once for every workload: the workload writes its sections, the engine the rest.

report.md: the title, the workload's introduction (data, test set), the environment line, the workload's
sections (tables, notes, figures), and every run's configuration; report.html beside it is the same page with the
figures inlined (lab28.html_report), one file to share. Nothing is written until every input has been read and
checked (lab28.runs.files.read_suite), so a bad run folder leaves no half-written report.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab28.io_utils import atomic_write_text
from lab28.runs.files import SuiteFiles, environment_line


def write_suite_report(suite: SuiteFiles, title: str, intro: list[str], sections: list[str]) -> Path:
    """Write report.md and report.html of a suite whose inputs are read and checked; returns report.md's path."""
    env = next((s["env"] for s in suite.summaries.values() if s["env"]), {})
    lines = [f"# {title}", "", *intro]
    if env:
        lines += [environment_line(env), ""]
    lines += sections
    lines += ["## Configuration", ""]
    for name, config in suite.configs.items():
        lines += [f"<details><summary>{name}</summary>", "", "```json", json.dumps(config, indent=2), "```", "",
                  "</details>", ""]
    path = suite.folder / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    from lab28.html_report import write_html_report

    write_html_report(path)
    return path
