"""TimeSformer (Bertasius et al., ICML 2021) with divided space-time attention, built from timm's layers.

timm has no video model. Parameter names follow the original TimeSformer code, so its Kinetics checkpoints load
directly (after stripping their ``model.`` prefix), and the spatial part keeps timm's ViT names
(``patch_embed``, ``blocks.i.attn``, ``blocks.i.mlp``, ``norm``, ``head``), so ImageNet ViT weights initialise it.
Attention is timm's, which uses ``scaled_dot_product_attention``. Tokens are ordered space-major, time-minor
(``(h w t)``) as in the original.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Attention
from torch import Tensor, nn

AttentionType = Literal["divided_space_time", "space_only", "joint_space_time"]
EmbedResize = Literal["original", "interpolate"]


class Block(nn.Module):
    """Temporal attention over each patch's track, then spatial attention within each frame, then the MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float, attention_type: AttentionType):
        super().__init__()
        self.attention_type = attention_type
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, qkv_bias=True)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.temporal_attn = Attention(dim, heads, qkv_bias=True)
            self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, frames: int, patches: int) -> Tensor:
        if self.attention_type != "divided_space_time":  # joint: all tokens; space_only: frames are batched
            x = x + self.drop_path(self.attn(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        batch, _, dim = x.shape
        cls, tokens = x[:, :1], x[:, 1:]  # tokens: B x (N T) x D
        track = tokens.reshape(batch * patches, frames, dim)
        temporal = self.drop_path(self.temporal_attn(self.temporal_norm1(track)))
        tokens = tokens + self.temporal_fc(temporal.reshape(batch, patches * frames, dim))
        # spatial attention per frame, each frame with its own copy of the class token
        per_frame = tokens.reshape(batch, patches, frames, dim).transpose(1, 2).reshape(batch * frames, patches, dim)
        cls_per_frame = cls.expand(batch, frames, dim).reshape(batch * frames, 1, dim)
        spatial = self.drop_path(self.attn(self.norm1(torch.cat([cls_per_frame, per_frame], dim=1))))
        cls_update = spatial[:, 0].reshape(batch, frames, dim).mean(1, keepdim=True)
        spatial_tokens = spatial[:, 1:].reshape(batch, frames, patches, dim).transpose(1, 2).reshape(batch, -1, dim)
        x = torch.cat([cls, tokens], dim=1) + torch.cat([cls_update, spatial_tokens], dim=1)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TimeSformer(nn.Module):
    """Video transformer on ``B x 3 x T x H x W`` clips (ViT-B/16, 8 x 224 by default).

    ``num_frames`` and ``img_size`` size the time and position embeddings; clips of another length or size are
    served by resizing them, and `adapt_state_dict` resizes a checkpoint's embeddings once, at load time.
    ``embed_resize`` says how: ``"original"`` (default) does what the original code does, so its checkpoints give
    its logits: nearest-neighbour everywhere, over the flattened patch sequence at load time and over the patch
    grid in the forward pass; ``"interpolate"`` resizes the patch grid bicubically and time linearly.
    """

    def __init__(
        self,
        num_classes: int,
        num_frames: int = 8,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        attention_type: AttentionType = "divided_space_time",
        embed_resize: EmbedResize = "original",
    ) -> None:
        super().__init__()
        if embed_resize not in ("original", "interpolate"):
            raise ValueError(f"embed_resize must be 'original' or 'interpolate', got {embed_resize!r}")
        self.attention_type, self.num_frames, self.patch_size = attention_type, num_frames, patch_size
        self.smooth = embed_resize == "interpolate"
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim, strict_img_size=False)
        patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        if attention_type != "space_only":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames, embed_dim))
            self.time_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, r, attention_type) for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init_weights)
        for block in list(self.blocks)[1:]:  # as the original: temporal residuals start at zero, but the first
            if attention_type == "divided_space_time":
                nn.init.zeros_(block.temporal_fc.weight)
                nn.init.zeros_(block.temporal_fc.bias)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward_features(self, clip: Tensor) -> Tensor:
        batch, _, frames, height, width = clip.shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"TimeSformer needs a crop divisible by its patch size {self.patch_size}, got {height} x {width}: "
                f"set data.crop_size to a multiple of {self.patch_size}"
            )
        x = self.patch_embed(clip.transpose(1, 2).reshape(batch * frames, 3, height, width))  # (B T) x N x D
        grid = (height // self.patch_size, width // self.patch_size)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.pos_drop(x + resize_pos_embed(self.pos_embed, grid, "bicubic" if self.smooth else "nearest"))
        patches = x.shape[1] - 1
        cls = x[:batch, :1]
        if self.attention_type == "space_only":
            for block in self.blocks:
                x = block(x, frames, patches)
            # as the original: average each token over the frames, then the final norm, then the class token
            return self.norm(x[:, 0].reshape(batch, frames, -1).mean(1))
        tokens = x[:, 1:].reshape(batch, frames, patches, -1).transpose(1, 2)  # B x N x T x D
        time_embed = resize_time_embed(self.time_embed, frames, "linear" if self.smooth else "nearest")
        tokens = self.time_drop(tokens + time_embed.unsqueeze(1))
        x = torch.cat([cls, tokens.reshape(batch, patches * frames, -1)], dim=1)
        for block in self.blocks:
            x = block(x, frames, patches)
        return self.norm(x)[:, 0]

    def forward(self, clip: Tensor) -> Tensor:
        return self.head(self.forward_features(clip))

    def adapt_state_dict(self, state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
        """Resize a checkpoint's position and time embeddings to this model's (see ``embed_resize``) and, for an
        image ViT checkpoint (no temporal attention), start each block's temporal attention and its norm from the
        spatial ones, as the original's ``load_pretrained`` does (``temporal_fc`` keeps its initialisation: zero
        from the second block on). Returns the new state and the names of the resized entries."""
        resized = []
        state = dict(state)
        if self.attention_type == "divided_space_time":
            for key in list(state):
                if key.startswith("blocks.") and (".attn." in key or ".norm1." in key):
                    temporal = key.replace(".attn.", ".temporal_attn.").replace(".norm1.", ".temporal_norm1.")
                    state.setdefault(temporal, state[key])
        for name in ("pos_embed", "time_embed"):
            if name in state and hasattr(self, name) and state[name].shape != getattr(self, name).shape:
                size = getattr(self, name).shape[1]
                if name == "time_embed":
                    state[name] = resize_time_embed(state[name], size, "linear" if self.smooth else "nearest")
                elif self.smooth:
                    side = round((size - 1) ** 0.5)
                    state[name] = resize_pos_embed(state[name], (side, side), "bicubic")
                else:  # the original's load rule: nearest over the flattened patch sequence
                    patches = F.interpolate(state[name][:, 1:].transpose(1, 2), size=size - 1, mode="nearest")
                    state[name] = torch.cat([state[name][:, :1], patches.transpose(1, 2)], dim=1)
                resized.append(name)
        return state, resized


def resize_pos_embed(pos_embed: Tensor, grid: tuple[int, int], mode: str = "bicubic") -> Tensor:
    """``1 x (1 + N) x D`` class + square-grid embedding -> the same for ``grid`` (``bicubic`` or ``nearest``
    over the grid), if it differs."""
    patches = pos_embed.shape[1] - 1
    side = round(patches**0.5)
    if (side, side) == tuple(grid):
        return pos_embed
    spatial = pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    smooth = {"align_corners": False} if mode == "bicubic" else {}
    spatial = F.interpolate(spatial.float(), size=grid, mode=mode, **smooth).to(pos_embed.dtype)
    return torch.cat([pos_embed[:, :1], spatial.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)], dim=1)


def resize_time_embed(time_embed: Tensor, frames: int, mode: str = "linear") -> Tensor:
    """``1 x T x D`` -> ``1 x frames x D`` (``linear`` or ``nearest``), if it differs."""
    if time_embed.shape[1] == frames:
        return time_embed
    smooth = {"align_corners": False} if mode == "linear" else {}
    resized = F.interpolate(time_embed.transpose(1, 2).float(), size=frames, mode=mode, **smooth)
    return resized.transpose(1, 2).to(time_embed.dtype)
