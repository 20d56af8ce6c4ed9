"""Map-style clip dataset: record -> sampled frame indices -> decoded frames -> transformed clip."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vmp_lightning.data.sampling import sample_clip_indices
from vmp_lightning.data.video import VideoDecodeError, VideoRecord, open_video, read_frames


class ClipDataset(Dataset):
    """Returns ``{"video": C x T x H x W float, "label": int, "video_id": str, "index": int}``.

    ``num_frames`` is the number of frames decoded per clip (T, or T+1 when a motion prompt consumes one).
    Training clips start at a random position (``random_window=True``), evaluation clips are centred.
    A reader is opened per item inside the worker process that needs it, so nothing is shared across workers.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        num_frames: int,
        stride: int,
        transform: Callable[[Tensor], Tensor],
        random_window: bool,
    ) -> None:
        self.records = list(records)
        self.num_frames, self.stride = num_frames, stride
        self.transform = transform
        self.random_window = random_window

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        reader = open_video(record.path)
        end = len(reader) - 1 if record.end_frame is None else min(record.end_frame, len(reader) - 1)
        length = end - record.start_frame + 1
        if length < 1:
            raise VideoDecodeError(f"{record.path}: no frames in [{record.start_frame}, {record.end_frame}]")
        # Drawn from torch's RNG, which Lightning seeds per worker, so runs with a seed are reproducible.
        rng = np.random.default_rng(int(torch.randint(2**62, ()))) if self.random_window else None
        indices = sample_clip_indices(length, self.num_frames, self.stride, rng, record.start_frame)
        frames = torch.from_numpy(read_frames(reader, indices, record.path))
        return {
            "video": self.transform(frames),
            "label": record.label,
            "video_id": record.video_id,
            "index": index,
        }
