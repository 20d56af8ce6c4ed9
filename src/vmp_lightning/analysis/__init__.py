"""What the layer learned, from Python or the command line (`vmp-lightning visualize | pn-compare |
weight-similarity | per-class | compare-runs`): figures of frames, differences, attention maps and prompts, PN
curves, per-layer weight similarity, per-class accuracy, accuracy against a swept setting.

    from vmp_lightning.analysis import visualize, read_clip, prompt_layers_of_checkpoint
    visualize(read_clip("v.mp4", 9), prompt_layers_of_checkpoint("run.ckpt"), "out/")

Names are imported on first use, so the command line does not load matplotlib for other commands.
"""

from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.lazy import lazy_exports

_WHERE = {
    **dict.fromkeys(
        ["PromptTrace", "trace_prompt", "prompt_grid_figure", "pn_curve_figure", "save_figure"], "vmp_lightning.figures"
    ),
    **dict.fromkeys(["read_clip", "prompt_layers_of_checkpoint", "sigmoid_layer"], "vmp_lightning.analysis.common"),
    "PUBLISHED_MN": "vmp_lightning.analysis.published",
    "visualize": "vmp_lightning.analysis.visualization",
    **dict.fromkeys(["baseline_pns", "pn_compare"], "vmp_lightning.analysis.pn_comparison"),
    "weight_similarity": "vmp_lightning.analysis.weight_comparison",
    **dict.fromkeys(["per_class", "Predictions"], "vmp_lightning.analysis.class_comparison"),
    "compare_runs": "vmp_lightning.analysis.run_comparison",
}
__all__ = ["AnalysisError", *_WHERE]


__getattr__ = lazy_exports(__name__, _WHERE)
