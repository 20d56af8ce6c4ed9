"""What the layer learned: figures of frames, differences, attention maps and prompts, PN curves, and the
analysis commands (`vmp-lightning visualize | pn-compare | weight-similarity | per-class | compare-runs`)."""

from vmp_lightning.analysis.figures import PromptTrace, pn_curve_figure, prompt_grid_figure, save_figure, trace_prompt

__all__ = ["PromptTrace", "pn_curve_figure", "prompt_grid_figure", "save_figure", "trace_prompt"]
