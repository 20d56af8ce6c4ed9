"""What the analysis tools share: reading a clip, the prompt layers of a checkpoint or of fixed (m, n), the (m, n)
the project site publishes, and logging images to the active W&B run."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vmp_lightning.analysis.errors import AnalysisError
from vmp_lightning.data.sampling import clip_span
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import LearnableSigmoid, MotionPrompt


def log_to_wandb(images: dict[str, Path]) -> None:
    """Log PNG files to the active W&B run, if any."""
    import wandb

    if wandb.run is not None:
        wandb.log({key: wandb.Image(str(path)) for key, path in images.items()})


def read_clip(
    video: str | Path, frames: int, stride: int = 1, start: int | None = None, size: int | None = None
) -> Tensor:
    """``frames`` consecutive frames (every ``stride``-th) of a video as uint8 ``3 x frames x H x W``, centred
    unless ``start`` is given; the short side resized to ``size`` when given."""
    from vmp_lightning.data.video import open_video, read_frames

    reader = open_video(video, backend="pyav")
    span = int(clip_span(frames, stride))
    if len(reader) < span:
        raise AnalysisError(
            f"{video}: {len(reader)} frames, shorter than the clip ({frames} frames at stride {stride} need {span})"
        )
    first = (len(reader) - span) // 2 if start is None else start
    if first < 0 or first + span > len(reader):
        raise AnalysisError(f"{video}: frames {first}..{first + span - 1} are outside its {len(reader)} frames")
    clip = torch.from_numpy(read_frames(reader, list(range(first, first + span, stride)))).permute(3, 0, 1, 2)
    if size is not None:
        h, w = clip.shape[-2:]
        scale = size / min(h, w)
        resized = torch.nn.functional.interpolate(
            clip.float(), size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True
        )
        clip = resized.round().clamp(0, 255).to(torch.uint8)
    return clip


def prompt_layers_of_checkpoint(path: str | Path) -> dict[str, MotionPrompt]:
    """The trained prompt layers of a `vmp-lightning fit` checkpoint (site -> layer)."""
    from vmp_lightning.classifier import VideoClassifier

    try:
        model = VideoClassifier.load_from_checkpoint(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise AnalysisError(f"{path}: not a vmp-lightning checkpoint with its config ({error})") from error
    if not len(model.model.prompts):
        raise AnalysisError(f"{path}: this model has no motion prompt layer (trained with vmp off)")
    return dict(model.model.prompts.items())


def sigmoid_layer(m: float, n: float, normalization: Normalization | None = None) -> MotionPrompt:
    """A prompt layer with the learnable sigmoid fixed at (m, n)."""
    return MotionPrompt(normalization, LearnableSigmoid(init_m=m, init_n=n))
