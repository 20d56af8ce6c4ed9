"""Exact clip- and video-level evaluation: scores gathered from all ranks, de-duplicated, aggregated over views;
the prediction dump each test writes. Names are imported on first use: reading a dump loads no torch."""

from importlib import import_module

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


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
