"""Clip scores -> video scores -> metrics, exact under DDP.

Lightning's distributed sampler pads the last batches so every rank gets the same number of items, which counts
some clips twice. Each clip is therefore keyed by ``(video_id, view)``; scores from all ranks are gathered and
duplicates dropped before anything is computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_confusion_matrix

Aggregation = Literal["sum_logits", "mean_softmax"]


class RunningAccuracy:
    """Top-1 and top-5 (top-min(5, classes)) accuracy of the clips seen since `reset`, micro-averaged: hit counts
    in one small tensor per step, summed over ranks once, in `compute`. (A torchmetrics collection cost ~0.2 ms a
    step to update and two `self.log` calls a step to report, a few % of a small model's training step.)"""

    def __init__(self, num_classes: int) -> None:
        self.top_k = min(5, num_classes)
        self.counts = torch.zeros(3, dtype=torch.long)  # top-1 hits, top-k hits, clips

    def reset(self, device: torch.device | str = "cpu") -> None:
        self.counts = torch.zeros(3, dtype=torch.long, device=device)

    def update(self, logits: Tensor, labels: Tensor) -> None:
        hits = logits.detach().topk(self.top_k, dim=1).indices == labels[:, None]
        clips = torch.tensor(len(labels), device=hits.device)
        self.counts = self.counts.to(hits.device) + torch.stack([hits[:, 0].sum(), hits.sum(), clips])

    def compute(self, sum_over_ranks: Callable[[Tensor], Tensor] = lambda counts: counts) -> dict[str, Tensor]:
        """``{"acc1", "acc5"}`` over every rank's clips (``sum_over_ranks`` all-reduces a copy of the counts under
        DDP); empty when no clip was seen."""
        top1, top_k, clips = sum_over_ranks(self.counts.clone())
        if clips == 0:
            return {}
        return {"acc1": top1 / clips, "acc5": top_k / clips}


@dataclass
class ClipScores:
    """Scores of evaluated clips on this rank, to be gathered at the end of the epoch."""

    video_ids: list[str] = field(default_factory=list)
    views: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    logits: list[Tensor] = field(default_factory=list)

    def update(self, video_ids, views, labels: Tensor, logits: Tensor) -> None:
        self.video_ids += list(video_ids)
        self.views += [int(v) for v in views]
        self.labels += [int(v) for v in labels]
        self.logits += list(logits.detach().float().cpu())

    def gathered(self) -> ClipScores:
        """All ranks' clips, each ``(video_id, view)`` once, in a fixed order (the same on every rank)."""
        parts = [self]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, self)
        unique: dict[tuple[str, int], tuple[int, Tensor]] = {}
        for part in parts:
            rows = zip(part.video_ids, part.views, part.labels, part.logits, strict=True)
            for video_id, view, label, logit in rows:
                unique.setdefault((video_id, view), (label, logit))
        merged = ClipScores()
        for (video_id, view), (label, logit) in sorted(unique.items()):
            merged.video_ids.append(video_id)
            merged.views.append(view)
            merged.labels.append(label)
            merged.logits.append(logit)
        return merged

    def clear(self) -> None:
        self.video_ids, self.views, self.labels, self.logits = [], [], [], []


def aggregate_videos(clips: ClipScores, method: Aggregation = "sum_logits") -> tuple[list[str], Tensor, Tensor]:
    """Video ids, labels and scores (``V x K``) from the views of each video: the sum of logits (the reference
    code's choice) or the mean of softmax probabilities."""
    if method not in ("sum_logits", "mean_softmax"):
        raise ValueError(f"aggregation must be 'sum_logits' or 'mean_softmax', got {method!r}")
    groups: dict[str, list[int]] = {}
    for position, video_id in enumerate(clips.video_ids):
        groups.setdefault(video_id, []).append(position)
    ids = sorted(groups)
    logits = torch.stack(clips.logits) if clips.logits else torch.zeros(0, 0)
    scores, labels = [], []
    for video_id in ids:
        rows = logits[groups[video_id]]
        scores.append(rows.sum(0) if method == "sum_logits" else rows.softmax(-1).mean(0))
        video_labels = {clips.labels[p] for p in groups[video_id]}
        if len(video_labels) != 1:
            raise ValueError(f"video {video_id!r} has clips with different labels {sorted(video_labels)}")
        labels.append(video_labels.pop())
    return ids, torch.tensor(labels, dtype=torch.long), torch.stack(scores) if scores else logits


@dataclass
class Report:
    """Top-1, top-5, mean-class accuracy, per-class accuracy (NaN for classes without samples), confusion matrix
    (rows: true class, columns: predicted class)."""

    acc1: float
    acc5: float
    mean_class_acc: float
    per_class_acc: list[float]
    confusion: list[list[int]]
    count: int


def classification_report(scores: Tensor, labels: Tensor, num_classes: int) -> Report:
    """Top-1 / top-5 (top-k capped at the number of classes) and the confusion matrix by torchmetrics; per-class
    accuracy from its rows, NaN for a class without samples, and the mean over the classes that have samples
    (torchmetrics' ``macro`` would also count a class that is only predicted, as 0)."""
    if len(labels) == 0:
        raise ValueError("no samples to evaluate")
    scores = scores.float()
    acc1 = multiclass_accuracy(scores, labels, num_classes, top_k=1, average="micro").item()
    acc5 = multiclass_accuracy(scores, labels, num_classes, top_k=min(5, num_classes), average="micro").item()
    confusion = multiclass_confusion_matrix(scores, labels, num_classes)
    totals = confusion.sum(1)
    per_class = torch.where(totals > 0, confusion.diag() / totals.clamp_min(1), torch.tensor(float("nan")))
    return Report(
        acc1=acc1,
        acc5=acc5,
        mean_class_acc=per_class.nanmean().item(),
        per_class_acc=per_class.tolist(),
        confusion=confusion.tolist(),
        count=len(labels),
    )


@dataclass
class Evaluation:
    """Video scores (views aggregated) with their report, and the clip-level report."""

    video_ids: list[str]
    labels: Tensor
    scores: Tensor
    report: Report
    clip_report: Report

    def metrics(self) -> dict[str, float]:
        """What a run logs: video-level acc1, acc5, mean_class_acc; clip_acc1, clip_acc5; number of videos."""
        video, clip = self.report, self.clip_report
        return {
            "acc1": video.acc1,
            "acc5": video.acc5,
            "mean_class_acc": video.mean_class_acc,
            "clip_acc1": clip.acc1,
            "clip_acc5": clip.acc5,
            "videos": float(video.count),
        }


def evaluate(clips: ClipScores, num_classes: int, aggregation: Aggregation = "sum_logits") -> Evaluation:
    """Clip-level and video-level evaluation of (gathered) clip scores."""
    clip_report = classification_report(torch.stack(clips.logits), torch.tensor(clips.labels), num_classes)
    video_ids, labels, scores = aggregate_videos(clips, aggregation)
    return Evaluation(video_ids, labels, scores, classification_report(scores, labels, num_classes), clip_report)
