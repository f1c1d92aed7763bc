"""The suite report page without training: the engine's layout (banner, summary, contents), the HTML converter's
anchors and figure rows, the workloads' summaries, and the preset each config records."""

from pathlib import Path

import numpy as np
import pytest

from lab28.html_report import heading_anchors, markdown_to_html
from lab28.runs.files import SuiteFiles, environment_lines
from lab28.runs.report import ReportPage, write_suite_report


class FakeWorkload:
    """Just what the engine's report reads from a workload."""

    demo_preset = "quick"

    def __init__(self, suite: SuiteFiles):
        self.suite = suite

    def report_page(self, suite_dir: Path) -> ReportPage:
        return ReportPage(self.suite, "A suite", ["- **Best**: b"], ["Data: somewhere.", ""],
                          ["## Results", "", "| a | b |", "|---|---|", "| 1 | 2 |", "", "## Results", "", "again", ""])

    def experiment_command(self, config: dict) -> str:
        return f"`lab28 suite {config['data']}`"


def fake_suite(folder: Path, presets: dict[str, str]) -> SuiteFiles:
    summaries = {name: {"final": {}, "config": {"preset": preset, "data": "real"}, "env": {}, "data": {}}
                 for name, preset in presets.items()}
    return SuiteFiles(folder, [folder / name for name in presets], summaries, {})


def test_the_page_opens_with_banner_summary_and_contents(tmp_path):
    report = write_suite_report(FakeWorkload(fake_suite(tmp_path, {"a": "quick", "b": "quick"})), tmp_path)
    lines = report.read_text().splitlines()
    assert lines[0] == "# A suite" and lines[2].startswith("> **The `quick` preset (every run): a small demonstration")
    assert "The experiment: `lab28 suite real`." in lines[2] and lines[4] == "## Summary"
    # the contents link every `##` section, a repeated heading by its -1 anchor, as report.html names them
    toc = [line for line in lines if line.startswith("- [")]
    assert toc == ["- [Summary](#summary)", "- [Results](#results)", "- [Results](#results-1)",
                   "- [Configuration](#configuration)"]
    assert lines.index(toc[0]) < lines.index("## Results")
    page = (tmp_path / "report.html").read_text()
    for anchor in ("summary", "results", "results-1", "configuration"):
        assert f'id="{anchor}"' in page and f'href="#{anchor}"' in page
    assert page.index("<blockquote>") < page.index('<div class="summary">') < page.index('<nav class="toc">')


def test_the_banner_names_the_quick_runs_and_is_absent_without_them(tmp_path):
    mixed = write_suite_report(FakeWorkload(fake_suite(tmp_path, {"a": "lab", "b": "quick"})), tmp_path).read_text()
    assert "> **The `quick` preset (runs b):" in mixed
    for presets in ({"a": "lab"}, {"a": ""}):
        text = write_suite_report(FakeWorkload(fake_suite(tmp_path, presets)), tmp_path).read_text()
        assert "\n> " not in text and "demonstration" not in text


def test_anchors_follow_github_and_skip_fenced_code():
    lines = ["# Title", "## Per-class P — test set", "```", "## not a heading", "```", "## The loss's weight λ",
             "### `code` **bold**", "## Per-class P — test set"]
    assert heading_anchors(lines) == [
        (1, "Title", "title"), (2, "Per-class P — test set", "per-class-p--test-set"),
        (2, "The loss's weight λ", "the-losss-weight-λ"), (3, "`code` **bold**", "code-bold"),
        (2, "Per-class P — test set", "per-class-p--test-set-1")]


def test_consecutive_figures_share_a_grid_and_wide_ones_are_marked(tmp_path):
    import matplotlib.image

    matplotlib.image.imsave(tmp_path / "square.png", np.zeros((30, 30)))
    matplotlib.image.imsave(tmp_path / "wide.png", np.zeros((10, 40)))
    page = markdown_to_html("![one](square.png)\n![panels](wide.png)\n![two](square.png)\n\n![lost](nowhere.png)\n"
                            "text ![inline](square.png)\n", tmp_path, "t")
    grids = page.split('<div class="figures">')[1:]
    assert len(grids) == 2 and grids[0].count("<figure") == 3 and "<figure class=wide><img alt=\"panels\"" in grids[0]
    assert "<figcaption>two</figcaption>" in grids[0] and "[missing figure nowhere.png]" in grids[1]
    assert '<p>text <img alt="inline" src="data:image/png;base64,' in page


def gsn_final(setting: str, accuracy: float, rmse: float) -> dict:
    return {"setting": setting, "lam": 3.0, "best_epoch": 4, "epochs_run": 9, "runtime_s": 120.0,
            "val": {"accuracy": accuracy, "macro_f1": 0.4, "pair_accuracy": 0.9, "rmse": rmse, "mae": 0.3},
            "val_tta": {"accuracy": accuracy + 0.01, "rmse": rmse - 0.01}}


def test_gsn_summary_names_the_best_top1_and_the_best_counts():
    from lab28.workloads.gsn.report import summary

    lines = summary({"cls": gsn_final("cls", 0.45, 0.9), "reg": gsn_final("reg", 0.30, 0.55),
                     "joint": gsn_final("joint", 0.52, 0.7), "j6": gsn_final("joint", 0.50, 0.6)})
    assert lines[0].startswith("- **Best top-1**: joint, λ = 3 — 52.0% (53.0% with TTA), macro F1 0.400")
    assert lines[1].startswith("- **Best count RMSE**: regression only — 0.550 (0.540 with TTA), MAE 0.300")
    assert "1 in 135 (0.7%)" in lines[2] and "1 in 15 (6.7%)" in lines[2]
    assert "joint, λ = 3, run j6" in summary({"j6": gsn_final("joint", 0.5, 0.6)})[0]


def test_classification_summary_ranks_by_validation_accuracy():
    from lab28.workloads.classify.report import summary

    def final(val, test):
        scores = lambda acc: {"accuracy": acc, "macro_f1": acc - 0.01}  # noqa: E731
        return {"val": scores(val), "test": scores(test) if test else None, "params": 12345, "best_epoch": 3,
                "epochs_run": 5, "runtime_s": 30.0}

    lines = summary({"a": final(0.90, 0.95), "b": final(0.92, 0.91), "c": final(0.91, None)}, 10)
    assert lines[0].startswith("- **Best model**: b — validation accuracy 92.00%, macro F1 0.910; test accuracy 91.00%")
    assert lines[1] == "- **Others** (validation accuracy): c 91.00%, a 90.00%."
    assert lines[2].startswith("- **Chance**: 1 in 10 (10.0%)")


@pytest.mark.parametrize("module, name", [("gsn", "quick"), ("gsn", "lab"), ("classify", "seed"),
                                          ("classify", "best"), ("classify", "quick")])
def test_presets_are_recorded_and_older_configs_load(module, name):
    import importlib

    config = importlib.import_module(f"lab28.workloads.{module}.config")
    data = config.preset(name).to_dict()
    assert data["preset"] == name and list(data)[:2] == ["workload", "preset"]
    del data["preset"]  # a config.json from before the field
    assert config.config_from_dict(data).preset == ""


def test_workloads_name_the_real_experiment():
    from lab28.workloads import get_workload

    assert get_workload("gsn").experiment_command({}).startswith("`lab28 suite gsn --preset lab --data DIR`")
    classify = get_workload("classify")
    assert classify.experiment_command({"data": {"dataset": "kmnist"}}) == "`lab28 suite kmnist --preset best`"
    assert classify.experiment_command({}) == "`lab28 suite fashion-mnist --preset best`"
    assert get_workload("gsn").demo_preset == classify.demo_preset == "quick"


def test_gsn_report_names_the_models_it_read_and_ignores_malformed_entries():
    from lab28.workloads.gsn.report import model_line

    configs = {"cls": {"model": {"name": "compact-cnn"}}, "reg": {"model": {"name": "compact-cnn"}},
               "joint": {"model": {"name": "shape-classifier"}}, "x": {"model": ["not", "an", "object"]},
               "y": {"model": {"name": 7}}, "z": {}}
    assert model_line(configs) == [
        "Model: `compact-cnn` (a small pooled CNN with the lab model's heads, not the lab's backbone), "
        "`shape-classifier` (the lab's fixed backbone with our heads).", ""]
    assert model_line({"a": {"model": {"name": "my-net"}}}) == ["Model: `my-net`.", ""]
    assert model_line({"a": {"model": None}}) == []


def test_the_results_table_tells_runs_of_one_setting_apart():
    from lab28.workloads.gsn.report import run_recipes

    def config(setting, seed, track="protocol"):
        return {"task": {"setting": setting, "lam": 3.0}, "train": {"seed": seed}, "data": {"track": track},
                "model": {"name": "shape-classifier"}}

    # A suite of the three settings of one recipe: the setting column is enough.
    assert run_recipes({s: config(s, 1) for s in ("cls", "reg", "joint")}) == {}
    # Two seeds of one setting: the folder names and the seeds.
    assert run_recipes({"a": config("joint", 1), "b": config("joint", 2)}) == {
        "run": {"a": "`a`", "b": "`b`"}, "seed": {"a": "1", "b": "2"}}
    # The same recipe twice (say, in two precisions): the folder names alone.
    assert run_recipes({"a": config("joint", 1), "b": config("joint", 1)}) == {"run": {"a": "`a`", "b": "`b`"}}
    # Two tracks: the track, and not the seed they share.
    assert run_recipes({"p": config("joint", 1), "s": config("joint", 1, "synthetic")}) == {
        "run": {"p": "`p`", "s": "`s`"}, "track": {"p": "protocol", "s": "synthetic"}}


def test_runs_from_different_environments_are_each_credited_with_their_own():
    env = {"lab28_version": "0.1.0", "git_hash": "abc", "torch_version": "2.13.0", "device": "cpu",
           "precision": "fp32", "torch_threads": 1}
    same = environment_lines({"a": env, "b": dict(env), "c": {}})
    assert same == ["lab28 0.1.0 (git abc), torch 2.13.0, device cpu, precision fp32, CPU threads per run: 1."]
    mixed = environment_lines({"a": env, "b": {**env, "torch_threads": 2}, "c": dict(env)})
    assert mixed == ["Runs a, c: " + same[0], "Runs b: " + same[0].replace("threads per run: 1", "threads per run: 2")]
    assert environment_lines({"a": {}}) == []
