"""Video-level aggregation, metrics, the prediction dump, and exact evaluation under DDP."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from helpers import QUIET, run_cli, tiny_data_args
from vmp_lightning.cli import build_cli
from vmp_lightning.evaluation import ClipScores, aggregate_videos, classification_report, evaluate, write_predictions


def clips() -> ClipScores:
    scores = ClipScores()
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 3.0], [1.0, 1.0, 1.0], [0.0, 5.0, 0.0], [1.0, 0.0, 0.0]])
    scores.update(["b", "a", "a", "b", "a"], [0, 0, 1, 1, 2], torch.tensor([1, 2, 2, 1, 2]), logits)
    return scores


def test_sum_of_logits_and_mean_of_softmax_by_hand():
    ids, labels, summed = aggregate_videos(clips(), "sum_logits")
    assert ids == ["a", "b"] and labels.tolist() == [2, 1]
    torch.testing.assert_close(summed, torch.tensor([[2.0, 2.0, 4.0], [2.0, 5.0, 1.0]]))
    _, _, mean = aggregate_videos(clips(), "mean_softmax")
    rows = torch.tensor([[0.0, 1.0, 3.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(mean[0], rows.softmax(-1).mean(0))
    with pytest.raises(ValueError, match="aggregation"):
        aggregate_videos(clips(), "max")


def test_duplicates_from_padding_are_counted_once():
    scores = clips()
    scores.update(["a"], [0], torch.tensor([2]), torch.tensor([[9.0, 9.0, 9.0]]))  # a padded repeat of (a, 0)
    merged = scores.gathered()
    keys = list(zip(merged.video_ids, merged.views, strict=True))
    assert len(keys) == 5 and keys == sorted(keys)
    _, _, summed = aggregate_videos(merged)
    torch.testing.assert_close(summed[0], torch.tensor([2.0, 2.0, 4.0]))


def test_classification_report_by_hand():
    scores = torch.tensor(
        [
            [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],  # label 0, top-1 right
            [0.1, 0.2, 0.7, 0.0, 0.0, 0.0],  # label 1, top-1 wrong (2), top-5 right
            [0.0, 0.0, 0.0, 0.0, 0.1, 0.9],  # label 1, wrong even at top-5 (1 is 6th)
            [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],  # label 2, right
        ]
    )
    scores[2, 1] = -1.0
    labels = torch.tensor([0, 1, 1, 2])
    report = classification_report(scores, labels, 6)
    assert report.acc1 == pytest.approx(0.5) and report.acc5 == pytest.approx(0.75)
    assert report.per_class_acc[:3] == [1.0, 0.0, 1.0] and all(math.isnan(v) for v in report.per_class_acc[3:])
    assert report.mean_class_acc == pytest.approx(2 / 3)  # classes without samples are left out
    assert report.confusion[1] == [0, 0, 1, 0, 0, 1] and sum(map(sum, report.confusion)) == 4
    with pytest.raises(ValueError, match="no samples"):
        classification_report(scores[:0], labels[:0], 6)


def test_mean_class_accuracy_leaves_out_classes_that_are_only_predicted():
    """Class 2 has no sample but is predicted once: it counts in no class's accuracy (torchmetrics' ``macro``
    would average it in as 0)."""
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])  # predictions 0, 1, 2, 1: class 0 1/2, class 1 1/2
    report = classification_report(scores, labels, 3)
    assert report.mean_class_acc == pytest.approx(0.5) and math.isnan(report.per_class_acc[2])
    assert report.confusion == [[1, 1, 0], [0, 1, 1], [0, 0, 0]] and report.acc1 == pytest.approx(0.5)


def test_prediction_dump_format(tmp_path):
    evaluation = evaluate(clips(), 3)
    assert evaluation.video_ids == ["a", "b"] and evaluation.metrics()["videos"] == 2.0
    assert evaluation.metrics()["clip_acc1"] == pytest.approx(
        2 / 5
    )  # clip argmaxes 0, 2, 0, 1, 0 vs labels 1, 2, 2, 1, 2
    path = write_predictions(tmp_path, "test", evaluation, ["x", "y", "z"])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["video_id", "label", "prediction", "score_0", "score_1", "score_2"]
    assert rows[1][:3] == ["a", "2", "2"] and rows[2][:3] == ["b", "1", "1"]
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert metrics["class_names"] == ["x", "y", "z"] and metrics["acc1"] == 1.0 and metrics["count"] == 2


def test_multi_view_test_through_the_cli(synthetic_root, tmp_path):
    args = [
        "test",
        *tiny_data_args(synthetic_root),
        "--data.init_args.test_clips=2",
        "--data.init_args.test_crops=3",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
        *QUIET,
    ]
    cli = build_cli(args)
    metrics = cli.trainer.callback_metrics
    assert metrics["test/videos"] == 12 and {"test/clip_acc1", "test/mean_class_acc"} <= set(metrics)
    rows = list(csv.DictReader((tmp_path / "test_predictions.csv").open()))
    assert len(rows) == 12 and len({r["video_id"] for r in rows}) == 12
    confusion = json.loads((tmp_path / "test_metrics.json").read_text())["confusion"]
    assert sum(map(sum, confusion)) == 12


@pytest.mark.slow
def test_ddp_evaluation_equals_single_process(tmp_path):
    """9 test videos on 2 ranks: the sampler pads one duplicate; results must equal one process exactly."""
    data = [
        f"--data.init_args.root={tmp_path / 'data'}",
        "--data.init_args.num_classes=3",
        "--data.init_args.videos_per_class=[4,2,3]",
        "--data.init_args.video_size=32",
        "--data.init_args.video_frames=16",
        "--data.init_args.object_size=8",
        "--data.init_args.crop_size=32",
        "--data.init_args.short_side=[32,36]",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--trainer.precision=32",
        "--trainer.logger=false",
        "--model.vmp=true",
        *QUIET,
    ]
    fit = build_cli(["fit", *data, "--trainer.max_epochs=1", f"--trainer.default_root_dir={tmp_path / 'fit'}"])
    checkpoint = Path(fit.trainer.default_root_dir) / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and fit.trainer.global_step > 0
    results = {}
    for name, extra in (
        ("single", ["--trainer.devices=1"]),
        ("ddp", ["--trainer.accelerator=cpu", "--trainer.strategy=ddp", "--trainer.devices=2"]),
    ):
        out = tmp_path / name
        args = ["test", *data, *extra, f"--ckpt_path={checkpoint}", f"--trainer.default_root_dir={out}"]
        result = run_cli(args)
        assert result.returncode == 0, result.stderr[-3000:]
        results[name] = (list(csv.DictReader((out / "test_predictions.csv").open())), out)
    single, ddp = results["single"][0], results["ddp"][0]
    assert len(single) == len(ddp) == 9
    assert [(r["video_id"], r["label"], r["prediction"]) for r in single] == [
        (r["video_id"], r["label"], r["prediction"]) for r in ddp
    ]
    for a, b in zip(single, ddp, strict=True):
        assert [float(a[f"score_{k}"]) for k in range(3)] == pytest.approx([float(b[f"score_{k}"]) for k in range(3)])
    metrics = [json.loads((out / "test_metrics.json").read_text()) for _, out in results.values()]
    assert metrics[0]["confusion"] == metrics[1]["confusion"] and metrics[0]["count"] == 9


def test_running_accuracy_equals_torchmetrics_over_several_steps():
    """The training accuracy's hit counts give torchmetrics' micro top-1 / top-5 over all clips of the epoch."""
    from torchmetrics.classification import MulticlassAccuracy

    from vmp_lightning.evaluation import RunningAccuracy

    generator = torch.Generator().manual_seed(0)
    running = RunningAccuracy(7)
    top1, top5 = MulticlassAccuracy(7, top_k=1, average="micro"), MulticlassAccuracy(7, top_k=5, average="micro")
    for size in (5, 3, 8):
        logits, labels = torch.randn(size, 7, generator=generator), torch.randint(0, 7, (size,), generator=generator)
        running.update(logits, labels)
        top1.update(logits, labels)
        top5.update(logits, labels)
    result = running.compute()
    assert float(result["acc1"]) == pytest.approx(float(top1.compute()))
    assert float(result["acc5"]) == pytest.approx(float(top5.compute()))
    assert 0 < float(result["acc1"]) < float(result["acc5"]) < 1  # the draw tests something


def test_running_accuracy_sums_ranks_caps_top_k_and_resets():
    from vmp_lightning.evaluation import RunningAccuracy

    running = RunningAccuracy(3)  # top-5 is top-3 with 3 classes: every clip is a hit
    running.update(torch.tensor([[3.0, 2.0, 1.0], [0.0, 1.0, 2.0]]), torch.tensor([0, 0]))
    assert {k: float(v) for k, v in running.compute().items()} == {"acc1": 0.5, "acc5": 1.0}
    # another rank saw 2 clips, none right in its top 1: the counts are summed before dividing
    other_rank = torch.tensor([0, 2, 2])
    summed = running.compute(lambda counts: counts + other_rank)
    assert {k: float(v) for k, v in summed.items()} == {"acc1": 0.25, "acc5": 1.0}
    running.reset()
    assert running.compute() == {}
