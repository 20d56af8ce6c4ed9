"""Exact clip- and video-level evaluation: scores gathered from all ranks, de-duplicated, aggregated over views;
the prediction dump each test writes. Names are imported on first use: reading a dump loads no torch."""

from vmp_lightning.lazy import lazy_exports

_WHERE = {
    **dict.fromkeys(
        [
            "Aggregation",
            "ClipScores",
            "Evaluation",
            "Report",
            "RunningAccuracy",
            "aggregate_videos",
            "classification_report",
            "evaluate",
        ],
        "video_level",
    ),
    **dict.fromkeys(["PredictionDump", "read_predictions", "write_predictions"], "predictions"),
}
__all__ = sorted(_WHERE)


__getattr__ = lazy_exports(__name__, _WHERE)
