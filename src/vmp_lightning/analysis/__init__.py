"""What the layer learned, from Python or the command line (`vmp-lightning visualize | pn-compare |
weight-similarity | per-class | compare-runs`): figures of frames, differences, attention maps and prompts, PN
curves, per-layer weight similarity, per-class accuracy, accuracy against a swept setting.

    from vmp_lightning.analysis import visualize, read_clip, prompt_layers_of_checkpoint
    visualize(read_clip("v.mp4", 9), prompt_layers_of_checkpoint("run.ckpt"), "out/")

Names are imported on first use, so the command line does not load matplotlib for other commands.
"""

from importlib import import_module

from vmp_lightning.analysis.errors import AnalysisError

_WHERE = {
    **dict.fromkeys(["PromptTrace", "trace_prompt", "prompt_grid_figure", "pn_curve_figure", "save_figure"], "figures"),
    **dict.fromkeys(
        [
            "PUBLISHED_MN",
            "read_clip",
            "prompt_layers_of_checkpoint",
            "sigmoid_layer",
            "visualize",
            "baseline_pns",
            "pn_compare",
            "weight_similarity",
            "per_class",
            "compare_runs",
            "Predictions",
        ],
        "tools",
    ),
}
__all__ = ["AnalysisError", *_WHERE]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f"vmp_lightning.analysis.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'vmp_lightning.analysis' has no attribute {name!r}")
