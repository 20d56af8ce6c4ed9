"""Map-style clip dataset: record -> frame indices -> decoded frames -> transformed clip, with a bad-video policy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vmp_lightning.data.sampling import eval_clip_indices, sample_clip_indices
from vmp_lightning.data.video import Backend, VideoDecodeError, VideoRecord, open_video, read_frames

OnBadVideo = Literal["raise", "skip"]


class ClipDataset(Dataset):
    """Training: one random clip per record. Evaluation: ``num_clips x num_crops`` views per record.

    Each item is ``{"video": C x T x H x W uint8, "label", "video_id", "view", "index", "bad_video"}``: a *view*
    is one temporal clip cut to one spatial crop, numbered ``clip * num_crops + crop`` within its video;
    ``index`` is the record's position; ``bad_video`` is ``""`` or ``"<path>: <reason>"`` when the record could
    not be read and, with ``on_bad_video="skip"``, the next readable record of the split stood in for it.
    ``frames_per_clip`` frames are decoded per clip (T, or T+1 when a motion prompt consumes one).
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        frames_per_clip: int,
        stride: int,
        transform: Callable[..., Tensor],
        train: bool,
        num_clips: int = 1,
        num_crops: int = 1,
        target_fps: float | None = None,
        backend: Backend = "decord",
        on_bad_video: OnBadVideo = "raise",
    ) -> None:
        if on_bad_video not in ("raise", "skip"):
            raise ValueError(f"on_bad_video must be 'raise' or 'skip', got {on_bad_video!r}")
        self.records = list(records)
        self.frames_per_clip, self.stride, self.target_fps = frames_per_clip, stride, target_fps
        self.transform, self.train = transform, train
        self.views_per_record = 1 if train else num_clips * num_crops
        self.num_clips, self.num_crops = num_clips, num_crops
        self.backend, self.on_bad_video = backend, on_bad_video

    def __len__(self) -> int:
        return len(self.records) * self.views_per_record

    def __getitem__(self, item: int) -> dict:
        index, view = divmod(item, self.views_per_record)
        bad = ""
        for attempt in range(len(self.records)):
            candidate = (index + attempt) % len(self.records)
            try:
                sample = self._load(candidate, view)
            except VideoDecodeError as error:
                if self.on_bad_video == "raise":
                    raise
                bad = bad or str(error)
                continue
            sample["bad_video"] = bad
            return sample
        raise VideoDecodeError(f"no readable video in this split (first problem: {bad})")

    def _load(self, index: int, view: int) -> dict:
        record = self.records[index]
        reader = open_video(record.path, self.backend)
        end = len(reader) - 1 if record.end_frame is None else min(record.end_frame, len(reader) - 1)
        length = end - record.start_frame + 1
        if length < self.frames_per_clip:
            raise VideoDecodeError(
                f"{record.path}: too short, {max(length, 0)} frames in [{record.start_frame}, {record.end_frame}] "
                f"(the video has {len(reader)}), a clip needs {self.frames_per_clip}"
            )
        timing = {"start_frame": record.start_frame, "fps": reader.fps, "target_fps": self.target_fps}
        if self.train:
            # Drawn from torch's RNG, which Lightning seeds per worker, so runs with a seed are reproducible.
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
            indices = sample_clip_indices(length, self.frames_per_clip, self.stride, rng, **timing)
            clip = self.transform(torch.from_numpy(read_frames(reader, indices)))
        else:
            clip_index, crop = divmod(view, self.num_crops)
            indices = eval_clip_indices(length, self.frames_per_clip, self.stride, self.num_clips, clip_index, **timing)
            clip = self.transform(torch.from_numpy(read_frames(reader, indices)), crop)
        return {"video": clip, "label": record.label, "video_id": record.video_id, "view": view, "index": index}
