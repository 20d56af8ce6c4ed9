"""ClipDataset (data/clip_dataset.py): views x crops per test video, sampled frames, intervals, the bad-video policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import brightness_index, ramp_video
from vmp_lightning.data import (
    VideoDecodeError,
    VideoRecord,
    eval_transform,
    write_video,
)
from vmp_lightning.data.clip_dataset import ClipDataset, EpochShuffle


def test_eval_dataset_items_are_views_times_crops_and_tagged(tmp_path):
    paths = [ramp_video(tmp_path / f"v{i}.mp4", frames=30) for i in range(2)]
    records = [VideoRecord(str(p), i, f"video{i}") for i, p in enumerate(paths)]
    transform = eval_transform(32, 32, num_crops=3)
    dataset = ClipDataset(records, 4, 2, transform, train=False, num_clips=2, num_crops=3)
    assert len(dataset) == 2 * 2 * 3
    items = [dataset[i] for i in range(len(dataset))]
    assert [(it["video_id"], it["view"]) for it in items[:6]] == [("video0", v) for v in range(6)]
    assert items[6]["video_id"] == "video1" and items[6]["label"] == 1
    # temporal view 0 lies before temporal view 1
    first, second = items[0]["video"].float().mean(dim=(0, 2, 3)), items[3]["video"].float().mean(dim=(0, 2, 3))
    assert torch.all(second > first)


def test_train_clips_follow_the_sampled_indices(tmp_path):
    path = ramp_video(tmp_path / "ramp.mp4", frames=30)
    dataset = ClipDataset([VideoRecord(str(path), 0, "r")], 5, 3, lambda clip: clip, train=True)
    torch.manual_seed(0)
    for _ in range(5):
        indices = brightness_index(dataset[0]["video"])
        assert np.all(np.diff(indices) == 3) and indices[0] >= 0 and indices[-1] <= 29


@pytest.mark.parametrize("name", ["empty", "truncated", "missing"])
def test_bad_videos_raise_naming_the_file(bad_videos, name):
    records = [VideoRecord(str(bad_videos[name]), 0, name)]
    dataset = ClipDataset(records, 8, 1, lambda clip, crop=0: clip, train=False)
    with pytest.raises(VideoDecodeError, match=bad_videos[name].name):
        dataset[0]


@pytest.mark.parametrize(
    ("rule", "frames", "expected"),
    [
        ("clamp", 8, [0, 2, 4, 6, 6, 6, 6, 6]),  # PySlowFast: the window from frame 0, clamped to the last frame
        ("clamp", 9, [0, 2, 4, 6, 6, 6, 6, 6, 6]),
        ("vmps", 8, [0, 1, 3, 5, 0, 2, 4, 6]),  # the authors' decoder: 7 frames tiled twice, linspace(0, 13, 8)
        ("vmps", 9, [0, 1, 3, 4, 6, 1, 2, 4, 6]),  # linspace(0, 13, 9) truncated, of the tiled frames
        ("spread", 9, [0, 1, 2, 2, 3, 4, 4, 5, 6]),
    ],
)
def test_a_video_shorter_than_the_clip_is_filled_by_the_rule_never_dropped(tmp_path, rule, frames, expected):
    """7 frames, a clip of 8 (baseline) or 9 (VMP) frames at stride 2: the frames of a full decode at the rule's
    indices, under on_bad_video="raise", in training and in evaluation."""
    path = ramp_video(tmp_path / "short.mp4", frames=7)
    records = [VideoRecord(str(path), 0, "short")]
    for train in (False, True):
        dataset = ClipDataset(records, frames, 2, lambda clip, crop=0: clip, train=train, short_videos=rule, seed=0)
        assert brightness_index(dataset[0]["video"]) == expected
    with pytest.raises(ValueError, match="short_videos"):
        ClipDataset(records, frames, 2, lambda clip, crop=0: clip, train=False, short_videos="drop")


def test_skip_policy_replaces_and_reports(bad_videos):
    records = [VideoRecord(str(bad_videos[n]), k, n) for k, n in enumerate(["truncated", "good", "empty"])]
    dataset = ClipDataset(records, 8, 1, lambda clip, crop=0: clip, train=False, on_bad_video="skip")
    first, second, third = dataset[0], dataset[1], dataset[2]
    assert first["video_id"] == "good" and "truncated.mp4" in first["bad_video"]
    assert second["bad_video"] == "" and second["video_id"] == "good"
    assert third["video_id"] == "good" and "empty.mp4: empty file" in third["bad_video"]
    with pytest.raises(ValueError, match="on_bad_video"):
        ClipDataset(records, 8, 1, lambda clip: clip, train=False, on_bad_video="ignore")


def test_interval_records_sample_inside_the_interval(tmp_path):
    frames = np.zeros((30, 32, 32, 3), np.uint8)
    for t in range(30):
        frames[t] = t * 8  # frame index readable from the brightness
    path = tmp_path / "ramp.mp4"
    write_video(path, frames, fps=10)
    dataset = ClipDataset([VideoRecord(str(path), 0, "ramp", 10, 19)], 4, 2, lambda t, crop=0: t.float(), train=False)
    values = dataset[0]["video"].mean(dim=(1, 2, 3)) / 8
    np.testing.assert_allclose(values.numpy(), [12, 14, 16, 18], atol=0.6)
    assert Path(path).is_file()


def test_epoch_shuffle_shares_one_permutation_between_processes_and_skips_what_a_resumed_run_trained():
    dataset = list(range(10))
    whole = list(EpochShuffle(dataset, seed=3, epoch=2))
    assert sorted(whole) == [20 + i for i in range(10)]  # tokens epoch * n + index, each record once
    assert whole != list(EpochShuffle(dataset, seed=3, epoch=1))
    shares = [list(EpochShuffle(dataset, seed=3, epoch=2, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(share) for share in shares] == [4, 4, 4]  # padded to equal shares, as DistributedSampler does
    assert set().union(*shares) == set(whole) and [s[0] for s in shares] == whole[:3]
    resumed = EpochShuffle(dataset, seed=3, epoch=2, skip=4)
    assert list(resumed) == whole[4:] and len(resumed) == 10  # the count goes on from the batches done
    resumed.set_epoch(2)  # Lightning sets the epoch it resumes in: still the rest of it
    assert list(resumed) == whole[4:]
    resumed.set_epoch(3)
    assert list(resumed) == list(EpochShuffle(dataset, seed=3, epoch=3))


def test_a_seeded_training_item_is_its_own_draw_and_leaves_the_callers_random_stream_as_it_was(tmp_path, monkeypatch):
    """With a seed, item k's clip and crop come from (seed, k) whatever the caller's stream, and the caller's CPU
    stream goes on as if the item had not been read (its state is put back, also after an error); the GPU's stream
    is not reseeded (loading in the main process, that would change the training's dropout)."""
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", reseeded.append)  # what torch.manual_seed also calls
    path = ramp_video(tmp_path / "ramp.mp4", frames=60)
    dataset = ClipDataset([VideoRecord(str(path), 0, "r")], 4, 2, lambda clip: clip, train=True, seed=5)
    torch.manual_seed(1)
    after = torch.rand(3)  # the caller's stream without the item
    torch.manual_seed(1)
    first = brightness_index(dataset[7]["video"])
    torch.manual_seed(2)
    assert np.array_equal(brightness_index(dataset[7]["video"]), first)  # another caller stream, the same item
    starts = {brightness_index(dataset[k]["video"])[0] for k in range(20)}
    assert len(starts) > 3  # different items, different draws
    torch.manual_seed(1)
    dataset[7]
    assert torch.equal(torch.rand(3), after)
    broken = ClipDataset([VideoRecord(str(tmp_path / "missing.mp4"), 0, "m")], 4, 2, lambda c: c, train=True, seed=5)
    torch.manual_seed(1)
    with pytest.raises(VideoDecodeError):
        broken[3]
    assert torch.equal(torch.rand(3), after)
    assert reseeded == [1, 1, 2, 1, 1]  # the test's own torch.manual_seed(1) calls, none from the items
