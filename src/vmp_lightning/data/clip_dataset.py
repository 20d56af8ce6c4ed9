"""Map-style clip dataset: record -> frame indices -> decoded frames -> transformed clip, with a bad-video policy."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from vmp_lightning.data.annotations import VideoRecord
from vmp_lightning.data.sampling import ShortVideoRule, eval_clip_indices, sample_clip_indices
from vmp_lightning.data.video import Backend, VideoDecodeError, open_video, read_frames

OnBadVideo = Literal["raise", "skip"]


class EpochShuffle(DistributedSampler):
    """The training order: a permutation drawn from ``(seed, epoch)`` alone, handed out as *tokens*
    ``epoch * n + index`` so that each item's randomness (`ClipDataset`) is a function of the seed, the epoch and
    the record, never of how many random numbers were drawn before, nor of the worker that loads it.

    A `DistributedSampler`, so that Lightning leaves it in place under DDP and gives it each epoch (``set_epoch``):
    each of ``num_replicas`` processes takes every ``num_replicas``-th item of the one permutation (padded to equal
    shares, as `DistributedSampler` does). ``skip`` items of this process's share are left out of the epoch it
    starts in: the batches a run resumed mid-epoch has already trained on; the length stays the full share,
    the count Lightning's batch counter continues.
    """

    def __init__(
        self, dataset: Dataset, seed: int, epoch: int = 0, skip: int = 0, num_replicas: int = 1, rank: int = 0
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.epoch, self.skip = epoch, skip

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.skip = epoch, 0

    def __iter__(self) -> Iterator[int]:
        size = len(self.dataset)
        order = torch.randperm(size, generator=torch.Generator().manual_seed(mix(self.seed, self.epoch)))
        order = order.repeat(-(-self.total_size // size))[: self.total_size]
        share = order[self.rank :: self.num_replicas][self.skip :]
        return iter((share + self.epoch * size).tolist())


def mix(seed: int, *values: int) -> int:
    """One seed from several numbers (different tuples give unrelated seeds)."""
    return int(np.random.SeedSequence([seed, *values]).generate_state(1, np.uint64)[0] >> 1)


class ClipDataset(Dataset):
    """Training: one random clip per record. Evaluation: ``num_clips x num_crops`` views per record.

    Each item is ``{"video": C x T x H x W uint8, "label", "video_id", "view", "index", "bad_video"}``: a *view*
    is one temporal clip cut to one spatial crop, numbered ``clip * num_crops + crop`` within its video;
    ``index`` is the record's position; ``bad_video`` is ``""`` or ``"<path>: <reason>"`` when the record could
    not be read and, with ``on_bad_video="skip"``, the next readable record of the split stood in for it.
    ``frames_per_clip`` frames are decoded per clip (T, or T+1 when a motion prompt consumes one). In training
    an item number may be a token of `EpochShuffle` (``epoch * len + index``); with a ``seed`` its random clip and
    augmentation are drawn from ``(seed, token)``, else from torch's random state.
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
        seed: int | None = None,
        short_videos: ShortVideoRule = "spread",
    ) -> None:
        if on_bad_video not in ("raise", "skip"):
            raise ValueError(f"on_bad_video must be 'raise' or 'skip', got {on_bad_video!r}")
        if short_videos not in get_args(ShortVideoRule):
            raise ValueError(f"short_videos must be one of {get_args(ShortVideoRule)}, got {short_videos!r}")
        self.records = list(records)
        self.frames_per_clip, self.stride, self.target_fps = frames_per_clip, stride, target_fps
        self.transform, self.train = transform, train
        self.views_per_record = 1 if train else num_clips * num_crops
        self.num_clips, self.num_crops = num_clips, num_crops
        self.backend, self.on_bad_video = backend, on_bad_video
        self.seed, self.short_videos = seed, short_videos

    def __len__(self) -> int:
        return len(self.records) * self.views_per_record

    def __getitem__(self, item: int) -> dict:
        if self.train and self.seed is not None:
            with torch.random.fork_rng(devices=[]):  # the item's own random numbers; the caller's stream untouched
                # the CPU generator only: torch.manual_seed would also reseed the GPU's stream, which fork_rng
                # does not put back, and costs 70 us (4 here), a quarter of a small clip's crop
                torch.default_generator.manual_seed(mix(self.seed, item))
                return self._item(item % len(self))
        return self._item(item % len(self))

    def _item(self, item: int) -> dict:
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
        if length < 1:  # a shorter video is filled by the short_videos rule, never dropped
            raise VideoDecodeError(
                f"{record.path}: no frame in [{record.start_frame}, {record.end_frame}] (the video has {len(reader)})"
            )
        timing = {"start_frame": record.start_frame, "fps": reader.fps, "target_fps": self.target_fps}
        timing["short_videos"] = self.short_videos
        if self.train:
            # drawn from torch's random state: the item's own with a seed (see __getitem__)
            rng = np.random.default_rng(int(torch.randint(2**62, ())))
            indices = sample_clip_indices(length, self.frames_per_clip, self.stride, rng, **timing)
            clip = self.transform(torch.from_numpy(read_frames(reader, indices)))
        else:
            clip_index, crop = divmod(view, self.num_crops)
            indices = eval_clip_indices(length, self.frames_per_clip, self.stride, self.num_clips, clip_index, **timing)
            clip = self.transform(torch.from_numpy(read_frames(reader, indices)), crop)
        return {"video": clip, "label": record.label, "video_id": record.video_id, "view": view, "index": index}
