"""SlowFast (pytorchvideo) with the motion prompt on the slow pathway, the fast pathway, or both.

The data loader hands one clip of the fast pathway's frames; the split into pathways happens here, after the
prompts, so each variant of the paper's Table 2 is one setting.

Which frames feed each pathway (T_fast = alpha * T_slow):

- baseline: the clip holds T_fast frames f_0 .. f_{T_fast-1}; fast = all of them; slow = f_{alpha-1}, f_{2 alpha-1},
  .., f_{T_fast-1} (the last frame of each group of alpha);
- with VMPs the clip holds T_fast + 1 frames f_0 .. f_{T_fast}, one earlier frame in front of the same window:
  fast = f_1 .. f_{T_fast}, or their prompts from the consecutive pairs (f_0, f_1) .. (f_{T_fast-1}, f_{T_fast});
  slow = f_alpha, f_{2 alpha}, .., f_{T_fast}, or their prompts from the slow pathway's own consecutive pairs
  (f_0, f_alpha) .. (f_{T_fast-alpha}, f_{T_fast}).
So both pathways see the same frames in every variant (prompts multiply exactly the frames the baseline would
see, shifted by the one leading frame), and each pathway's motion is measured at its own frame rate.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from vmp_lightning.prompt import MotionPrompt


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
        if not prompts:
            return [clip[:, :, self.alpha - 1 :: self.alpha], clip], attention
        slow_frames = clip[:, :, :: self.alpha]  # T_slow + 1 frames, f_0 .. f_{T_fast}
        if "slow" in prompts:
            slow, attention["slow"] = prompts["slow"](slow_frames)
        else:
            slow = slow_frames[:, :, 1:]
        if "fast" in prompts:
            fast, attention["fast"] = prompts["fast"](clip)
        else:
            fast = clip[:, :, 1:]
        return [slow, fast], attention

    def prompted_forward(self, clip: Tensor, prompts: Mapping[str, MotionPrompt]) -> tuple[Tensor, dict[str, Tensor]]:
        """Logits and ``{site: attention}`` with the given prompt layers (site -> layer; empty: none); see
        `vmp_lightning.model.PromptSites`."""
        inputs, attention = self.pathways(clip, prompts)
        return self.net(inputs), attention  # a fresh list each call: pytorchvideo's forward writes into it

    def forward(self, clip: Tensor) -> Tensor:
        """Logits of a baseline clip of alpha x T_slow frames."""
        return self.prompted_forward(clip, {})[0]
