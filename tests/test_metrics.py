"""Metrics against values computed by hand on tiny examples."""

import math

import pytest
import torch

from lab28.workloads.gsn.labels import class_name, encode_counts
from lab28.workloads.gsn.task import GSNTask, GSNTaskConfig, nearest_class, pair_confusion, pair_metrics
from lab28.metrics import classification_metrics, confusion_matrix, per_class_scores, regression_metrics


def test_confusion_matrix_rows_are_truth():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 1]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 0]]


def test_precision_recall_f1_by_hand():
    # truth:  0 0 0 1 1 2 ; pred: 0 0 1 1 2 2
    cm = confusion_matrix(torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 0, 0, 1, 1, 2]), 4)
    s = per_class_scores(cm)
    # class 0: P = 2/2, R = 2/3 ; class 1: P = 1/2, R = 1/2 ; class 2: P = 1/2, R = 1/1 ; class 3 absent
    assert s["precision"][:3].tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert s["recall"][:3].tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    f1 = [2 * (1 * 2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert s["f1"][:3].tolist() == pytest.approx(f1)
    m = classification_metrics(cm)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # Macro over the three classes that occur; absent class 3 is not averaged in.
    assert m["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert m["macro_precision"] == pytest.approx(2 / 3)
    assert m["classes_present"] == 3
    # Precision, recall and F1 differ here: the seed report's P = R = F1 bug would not pass.
    assert len({round(m["macro_precision"], 6), round(m["macro_recall"], 6), round(m["macro_f1"], 6)}) == 3


def test_regression_metrics_by_hand():
    pred = torch.tensor([[1.0, 2.0], [3.0, 5.0]])
    true = torch.tensor([[1.0, 4.0], [2.0, 5.0]])
    m = regression_metrics(pred, true, ["a", "b"])
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 4 + 1 + 0) / 4))
    assert m["mae"] == pytest.approx(3 / 4)
    assert m["rmse_a"] == pytest.approx(math.sqrt(0.5)) and m["rmse_b"] == pytest.approx(math.sqrt(2))
    assert m["mae_a"] == pytest.approx(0.5) and m["mae_b"] == pytest.approx(1.0)


def test_pair_metrics_aggregate_by_unordered_pair():
    true = encode_counts(torch.tensor([[4, 6, 0, 0, 0, 0], [4, 6, 0, 0, 0, 0], [0, 0, 3, 7, 0, 0], [0, 0, 3, 7, 0, 0]]))
    pred = encode_counts(torch.tensor([[4, 6, 0, 0, 0, 0], [5, 5, 0, 0, 0, 0], [0, 0, 3, 7, 0, 0], [3, 0, 7, 0, 0, 0]]))
    cm = confusion_matrix(pred, true, 135)
    pm = pair_metrics(cm)
    assert pm["pair_accuracy"] == pytest.approx(3 / 4)  # only the last prediction has the wrong pair
    assert pm["pair_exact_accuracy/squares+circles"] == pytest.approx(0.5)
    assert pm["pair_type_accuracy/squares+circles"] == pytest.approx(1.0)
    assert pm["pair_type_accuracy/up+right"] == pytest.approx(0.5)
    assert pair_confusion(cm).sum() == 4


def test_nearest_class_decodes_counts():
    pred = torch.tensor([[3.8, 6.1, 0.2, 0.0, 0.0, -0.1], [0.1, 0.0, 2.2, 0.1, 0.3, 7.4]])
    assert nearest_class(pred).tolist() == encode_counts(torch.tensor([[4, 6, 0, 0, 0, 0], [0, 0, 2, 0, 0, 8]])).tolist()


def test_settings_loss_and_predictions():
    log_probs = torch.log_softmax(torch.randn(3, 135), dim=1)
    counts = torch.tensor([[4.0, 6.0, 0, 0, 0, 0]] * 3)
    targets = {"counts": torch.tensor([[4, 6, 0, 0, 0, 0]] * 3), "classes": torch.tensor([3, 3, 3])}
    cls = GSNTask(GSNTaskConfig("cls")).loss((log_probs, counts), targets)
    reg = GSNTask(GSNTaskConfig("reg")).loss((log_probs, counts), targets)
    joint = GSNTask(GSNTaskConfig("joint", lam=2.0)).loss((log_probs, counts + 1), targets)
    assert set(cls[1]) == {"cls_loss"} and set(reg[1]) == {"reg_loss"}
    assert reg[0].item() == pytest.approx(0.0)
    assert joint[0].item() == pytest.approx(joint[1]["cls_loss"].item() + 2.0 * 0.5)  # SmoothL1(1) = 0.5
    # reg decodes the counts to a class: perfect counts -> perfect accuracy.
    m = GSNTask(GSNTaskConfig("reg")).metrics((log_probs, counts), targets)
    assert m["accuracy"] == 1.0 and m["rmse"] == pytest.approx(0.0)


def test_posterior_readout_gives_the_counts_expected_under_the_class_probabilities():
    # 0.75 on squares 4 + circles 6, 0.25 on squares 5 + circles 5: expected squares 4.25, circles 5.75.
    classes = encode_counts(torch.tensor([[4, 6, 0, 0, 0, 0], [5, 5, 0, 0, 0, 0]]))
    probs = torch.zeros(1, 135)
    probs[0, classes] = torch.tensor([0.75, 0.25])
    log_probs = probs.clamp_min(1e-30).log()
    head_counts = torch.tensor([[9.0, 1.0, 0, 0, 0, 0]])  # what the count head says: ignored by the posterior
    expected = [4.25, 5.75, 0, 0, 0, 0]
    for setting in ("cls", "joint"):
        task = GSNTask(GSNTaskConfig(setting, count_readout="posterior"))
        pred_classes, pred_counts = task.predict((log_probs, head_counts))
        assert pred_classes.tolist() == [classes[0].item()] and pred_counts[0].tolist() == pytest.approx(expected)
        targets = {"counts": torch.tensor([[4, 6, 0, 0, 0, 0]]), "classes": classes[:1]}
        assert task.metrics((log_probs, head_counts), targets)["rmse"] == pytest.approx(math.sqrt(2 * 0.25**2 / 6))
    # The setting's own readout: the predicted class's counts (cls), the count head (joint); reg has no class head.
    assert GSNTask(GSNTaskConfig("cls")).predict((log_probs, head_counts))[1][0].tolist() == [4, 6, 0, 0, 0, 0]
    assert GSNTask(GSNTaskConfig("joint")).predict((log_probs, head_counts))[1][0].tolist() == [9, 1, 0, 0, 0, 0]
    reg = GSNTask(GSNTaskConfig("reg", count_readout="posterior")).predict((log_probs, head_counts))
    assert reg[1][0].tolist() == [9, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="count_readout"):
        GSNTaskConfig("joint", count_readout="mean").validate()


def test_joint_reads_the_class_from_both_heads_by_the_squared_distance_of_the_count_head():
    # Class head: 0.6 on squares 4 + circles 6 (A), 0.4 on 5 + 5 (B); count head (5.2, 4.8): squared distance 2.88
    # from A, 0.08 from B. A wins while log(0.6 / 0.4) = 0.405 > w * 2.8, so the answer flips at w = 0.145;
    # by the plain distance (1.697 against 0.283) it would flip at w = 0.287 only.
    classes = encode_counts(torch.tensor([[4, 6, 0, 0, 0, 0], [5, 5, 0, 0, 0, 0]]))
    probs = torch.zeros(1, 135)
    probs[0, classes] = torch.tensor([0.6, 0.4])
    outputs = (probs.clamp_min(1e-30).log(), torch.tensor([[5.2, 4.8, 0, 0, 0, 0]]))
    a, b = classes.tolist()

    def read(setting="joint", w=0.0, lam=1.0):
        return GSNTask(GSNTaskConfig(setting, lam=lam, class_readout_weight=w)).predict(outputs)[0].item()

    assert read(w=0.0) == a and read(w=0.13) == a
    assert read(w=0.16) == b and read(w=0.3) == b
    # Only joint with a trained count head reads both; cls has one head, and reg decodes its counts as before.
    assert read("cls", w=0.3) == a and read("joint", w=0.3, lam=0.0) == a
    assert read("reg", w=0.3) == b  # nearest valid configuration to (5.2, 4.8)
    targets = {"counts": torch.tensor([[5, 5, 0, 0, 0, 0]]), "classes": classes[1:]}
    task = GSNTask(GSNTaskConfig("joint", class_readout_weight=0.3))
    assert task.metrics(outputs, targets)["accuracy"] == 1.0
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="class_readout_weight"):
            GSNTaskConfig("joint", class_readout_weight=bad).validate()


def test_prediction_ranks_the_classes_as_the_run_reads_them():
    from types import SimpleNamespace

    from lab28.workloads.gsn.config import GSNRunConfig
    from lab28.workloads.gsn.predict import GSNPredictor

    # The example above: w = 0.3 reads B (5 + 5, probability 0.4) over A (4 + 6, probability 0.6).
    a, b = encode_counts(torch.tensor([[4, 6, 0, 0, 0, 0], [5, 5, 0, 0, 0, 0]])).tolist()
    probs = torch.full((1, 135), 1e-6)
    probs[0, [a, b]] = torch.tensor([0.6, 0.4])
    outputs = (probs.log(), torch.tensor([[5.2, 4.8, 0, 0, 0, 0]]))
    for weight, first, second in ((0.0, a, b), (0.3, b, a)):
        config = GSNRunConfig()
        config.task = GSNTaskConfig("joint", class_readout_weight=weight)
        run = SimpleNamespace(config=config, outputs=lambda task, x, counts: outputs)
        record = GSNPredictor(run, top_k=2).predict(torch.zeros(1, 28, 28, dtype=torch.uint8))[0]
        assert record["class"] == first
        assert [name for name, _ in record["top_k"]] == [class_name(first), class_name(second)]
        assert dict(record["top_k"])[class_name(a)] == pytest.approx(0.6)  # the class head's own probability
