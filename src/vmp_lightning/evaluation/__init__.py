"""Exact clip- and video-level evaluation: scores gathered from all ranks, de-duplicated, aggregated over views."""

from vmp_lightning.evaluation.video_level import (
    Aggregation,
    ClipScores,
    Evaluation,
    Report,
    RunningAccuracy,
    aggregate_videos,
    classification_report,
    evaluate,
    write_predictions,
)

__all__ = [
    "Aggregation",
    "ClipScores",
    "Evaluation",
    "Report",
    "RunningAccuracy",
    "aggregate_videos",
    "classification_report",
    "evaluate",
    "write_predictions",
]
