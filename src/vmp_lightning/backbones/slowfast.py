"""SlowFast (pytorchvideo) with the motion prompt on the slow pathway, the fast pathway, or both.

The data loader hands one clip of the fast pathway's frames; the split into pathways happens here, after the
prompts, so each variant of the paper's Table 2 is one setting.

Which frames feed each pathway (T_fast = alpha * T_slow):

- baseline: the clip holds T_fast frames f_0 .. f_{T_fast-1}; fast = all of them; slow = the frames at
  ``linspace(0, T_fast - 1, T_slow)`` rounded down ([0, 4, 8, 13, 17, 22, 26, 31] for 32 frames), the selection
  PySlowFast and pytorchvideo pretrained with and the fast-to-slow fusion (stride alpha, kernel 7) is centred on;
- with VMPs the clip holds T_fast + 1 frames, one earlier frame in front of the same window, so the baseline's
  frames are f_1 .. f_{T_fast}. A prompted pathway gets the prompts of exactly the frames the baseline gives it:
  the layer turns the T_fast + 1 frames into T_fast prompts (consecutive pairs at the clip's frame rate), the fast
  pathway takes all of them, the slow pathway those at the same linspace positions; an unprompted pathway takes
  the baseline's frames.
So every variant sees the same frames, and each slow prompt is the motion between its frame and the frame just
before it, as if the prompts were computed before PySlowFast's pathway packing.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from vmp_lightning.backbones.pyslowfast import slowfast_from_pyslowfast
from vmp_lightning.prompt import MotionPrompt


def prompts_of_pairs(layer: MotionPrompt, clip: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """The prompts and maps of frames ``index + 1`` of ``clip``, each from its pair (``index``, ``index + 1``): the
    same values as ``layer(clip)`` at ``index``, computing only those pairs."""
    b, c, _, h, w = clip.shape
    pairs = torch.stack([clip[:, :, index], clip[:, :, index + 1]], dim=3)  # B x C x T x 2 x H x W
    prompts, maps = layer(pairs.transpose(1, 2).reshape(b * len(index), c, 2, h, w))
    return prompts.reshape(b, len(index), c, h, w).transpose(1, 2), maps.reshape(b, len(index), h, w)


class SlowFast(nn.Module):
    """pytorchvideo's SlowFast returning logits for any clip length and crop size (global head pooling).

    Args:
        num_classes: classes of the new head.
        depth: ResNet depth (50, 101, 152); the paper uses R50 8x8 (T_slow = 8, alpha = 4, 32 fast frames).
        alpha: frame-rate ratio fast / slow (also the lateral connections' temporal stride).
        beta: channel ratio fast / slow (1/8 in the paper).
        width: channels of the slow stem (64 for the published models; small values for tests).
        dropout: before the head.
    """

    prompt_sites = ("slow", "fast")
    from_original_layout = staticmethod(slowfast_from_pyslowfast)

    def __init__(
        self,
        num_classes: int,
        depth: int = 50,
        alpha: int = 4,
        beta: float = 1 / 8,
        width: int = 64,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        from pytorchvideo.models.slowfast import create_slowfast

        reduction = round(1 / beta)
        if width % reduction:
            raise ValueError(f"SlowFast width {width} must be divisible by 1 / beta = {reduction}")
        self.alpha = alpha
        self.net = create_slowfast(
            model_num_class=num_classes,
            model_depth=depth,
            slowfast_channel_reduction_ratio=(reduction,),
            slowfast_fusion_conv_stride=(alpha, 1, 1),
            stem_dim_outs=(width, width // reduction),
            dropout_rate=dropout,
        )
        pools = self.net.blocks[-2].pool  # one AvgPool3d per pathway, sized for a reference input
        for index in range(len(pools)):
            pools[index] = nn.AdaptiveAvgPool3d(1)

    def pathways(self, clip: Tensor, prompts: Mapping[str, MotionPrompt]) -> tuple[list[Tensor], dict[str, Tensor]]:
        """The slow and fast inputs (see the module docstring) and the attention maps of each prompted pathway."""
        frames = clip.shape[2] - (1 if prompts else 0)
        if frames % self.alpha:
            raise ValueError(
                f"SlowFast needs a fast clip of alpha x T_slow frames (alpha = {self.alpha}), got {frames}"
                + (" plus the prompt's leading frame" if prompts else "")
            )
        unknown = set(prompts) - set(self.prompt_sites)
        if unknown:
            raise ValueError(f"SlowFast prompts go on {self.prompt_sites}, got {sorted(unknown)}")
        attention: dict[str, Tensor] = {}
        slow_index = torch.linspace(0, frames - 1, frames // self.alpha, device=clip.device).long()
        if not prompts:
            return [clip[:, :, slow_index], clip], attention
        fast = clip[:, :, 1:]  # the baseline's frames, unless prompted
        if "fast" in prompts:
            fast, attention["fast"] = prompts["fast"](clip)
        if "slow" not in prompts:
            slow = clip[:, :, 1 + slow_index]
        elif prompts["slow"] is prompts.get("fast"):  # one shared layer: the fast prompts at the slow positions
            slow, attention["slow"] = fast[:, :, slow_index], attention["fast"][:, slow_index]
        else:
            slow, attention["slow"] = prompts_of_pairs(prompts["slow"], clip, slow_index)
        return [slow, fast], attention

    def prompted_forward(self, clip: Tensor, prompts: Mapping[str, MotionPrompt]) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and ``{site: attention}`` with the given prompt layers (site -> layer; empty: none); see
        `vmp_lightning.model.PromptSites`."""
        inputs, attention = self.pathways(clip, prompts)
        return self.net(inputs), attention  # a fresh list each call: pytorchvideo's forward writes into it

    def forward(self, clip: Tensor) -> Tensor:
        """Logits of a baseline clip of alpha x T_slow frames."""
        return self.prompted_forward(clip, {})[0]
