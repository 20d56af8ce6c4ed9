"""Decoder backends, fps-aware sampling, test views and crops, the bad-video policy and check-videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import brightness_index, ramp_video

from vmp_lightning.data import (
    SyntheticMotionSpec,
    VideoDecodeError,
    VideoRecord,
    available_backends,
    eval_transform,
    open_video,
    read_frames,
    render_video,
    sample_clip_indices,
    view_clip_indices,
    write_video,
)
from vmp_lightning.data.check import check_datamodule, check_video, write_report
from vmp_lightning.data.dataset import ClipDataset
from vmp_lightning.data.video import VideoWriter

BACKENDS = available_backends()


def test_decord_and_pyav_are_available():
    assert {"decord", "pyav"} <= set(BACKENDS)


@pytest.fixture(scope="module")
def motion_mp4(tmp_path_factory):
    spec = SyntheticMotionSpec(size=64, frames=30)
    frames = render_video(spec, 0, np.random.default_rng(0))
    path = tmp_path_factory.mktemp("videos") / "motion.mp4"
    write_video(path, frames, fps=30, gop=8)
    return path, frames


@pytest.mark.parametrize("indices", [[0, 3, 7, 8, 15, 29], [17, 20, 29], [5], list(range(30))])
def test_all_backends_return_the_same_frames(motion_mp4, indices):
    path, written = motion_mp4
    reference = read_frames(open_video(path, "decord"), indices)
    for backend in BACKENDS:
        reader = open_video(path, backend)
        assert len(reader) == 30 and reader.fps == pytest.approx(30)
        np.testing.assert_array_equal(read_frames(reader, indices), reference, err_msg=backend)
    distance = np.abs(reference[:, None].astype(int) - written[None].astype(int)).mean(axis=(2, 3, 4))
    assert distance.argmin(axis=1).tolist() == indices


def test_pyav_counts_frames_in_avi_without_timestamps(tmp_path):
    """AVI holds no presentation timestamps; PyAV decodes and counts. (decord 0.6 seeks wrongly in such files.)"""
    spec = SyntheticMotionSpec(size=64, frames=30)
    written = render_video(spec, 1, np.random.default_rng(1)).astype(int)
    path = tmp_path / "clip.avi"
    write_video(path, written.astype(np.uint8), fps=30, gop=8)
    indices = [0, 3, 8, 15, 29]
    decoded = read_frames(open_video(path, "pyav"), indices).astype(int)
    distance = np.abs(decoded[:, None] - written[None]).mean(axis=(2, 3, 4))
    assert distance.argmin(axis=1).tolist() == indices


def test_unknown_backend_is_a_clear_error(tmp_path):
    path = ramp_video(tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="unknown decoder backend 'opencv'"):
        open_video(path, "opencv")


# --- sampling ------------------------------------------------------------------------------------------------
def test_target_fps_scales_the_stride():
    at_30 = sample_clip_indices(300, 8, 4, fps=30, target_fps=30)
    at_60 = sample_clip_indices(600, 8, 4, fps=60, target_fps=30)
    assert np.all(np.diff(at_30) == 4) and np.all(np.diff(at_60) == 8)
    # a video slower than the target is never sampled twice at the same frame
    slow = sample_clip_indices(100, 8, 1, fps=10, target_fps=30)
    assert np.all(np.diff(slow) >= 1)


def test_views_are_spread_evenly_and_not_from_frame_zero():
    views = [view_clip_indices(90, 9, 1, 3, v) for v in range(3)]
    assert [v.mean() for v in views] == pytest.approx([15, 45, 75], abs=1)
    assert views[0][0] > 0
    np.testing.assert_array_equal(view_clip_indices(90, 9, 1, 1, 0), sample_clip_indices(90, 9, 1))
    with pytest.raises(ValueError, match="view must be in"):
        view_clip_indices(90, 9, 1, 3, 3)
    short = view_clip_indices(10, 9, 4, 3, 2)  # window longer than the video: spread, distinct frames
    assert len(set(short.tolist())) == 9


def test_three_spatial_crops_cover_left_centre_right():
    frames = torch.zeros(2, 32, 96, 3, dtype=torch.uint8)
    frames[..., 0] = torch.arange(96, dtype=torch.uint8)  # red grows from left to right
    transform = eval_transform(32, 32, num_crops=3)
    reds = [transform(frames, crop)[0].float().mean().item() for crop in range(3)]
    assert reds[0] == pytest.approx(15.5, abs=0.6) and reds[1] == pytest.approx(47.5, abs=0.6)
    assert reds[2] == pytest.approx(79.5, abs=0.6)


def test_eval_dataset_items_are_views_times_crops_and_tagged(tmp_path):
    paths = [ramp_video(tmp_path / f"v{i}.mp4", frames=30) for i in range(2)]
    records = [VideoRecord(str(p), i, f"video{i}") for i, p in enumerate(paths)]
    transform = eval_transform(32, 32, num_crops=3)
    dataset = ClipDataset(records, 4, 2, transform, train=False, num_views=2, num_crops=3)
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


# --- bad videos ------------------------------------------------------------------------------------------------
@pytest.fixture
def bad_videos(tmp_path):
    good = ramp_video(tmp_path / "good.mp4", frames=24)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    short = ramp_video(tmp_path / "short.mp4", frames=3)
    # moov first (faststart), then cut the media data: the header claims more frames than the file holds
    claims_more = tmp_path / "claims_more.mp4"
    frames = np.stack([np.full((32, 64, 3), 8 * t, np.uint8) + np.uint8(t % 3) for t in range(24)])
    with VideoWriter(claims_more, 64, 32, 10, crf=30, gop=4, container_options={"movflags": "faststart"}) as writer:
        for frame in frames:
            writer.write(frame)
    data = claims_more.read_bytes()
    claims_more.write_bytes(data[: int(len(data) * 0.9)])
    return {
        "good": good,
        "empty": empty,
        "truncated": truncated,
        "short": short,
        "claims_more": claims_more,
        "missing": tmp_path / "missing.mp4",
    }


@pytest.mark.parametrize("name", ["empty", "truncated", "missing", "short"])
def test_bad_videos_raise_naming_the_file(bad_videos, name):
    records = [VideoRecord(str(bad_videos[name]), 0, name)]
    dataset = ClipDataset(records, 8, 1, lambda clip, crop=0: clip, train=False)
    with pytest.raises(VideoDecodeError, match=bad_videos[name].name):
        dataset[0]


def test_skip_policy_replaces_and_reports(bad_videos):
    records = [VideoRecord(str(bad_videos[n]), k, n) for k, n in enumerate(["truncated", "good", "empty"])]
    dataset = ClipDataset(records, 8, 1, lambda clip, crop=0: clip, train=False, on_bad_video="skip")
    first, second, third = dataset[0], dataset[1], dataset[2]
    assert first["video_id"] == "good" and "truncated.mp4" in first["bad_video"]
    assert second["bad_video"] == "" and second["video_id"] == "good"
    assert third["video_id"] == "good" and "empty.mp4: empty file" in third["bad_video"]
    with pytest.raises(ValueError, match="on_bad_video"):
        ClipDataset(records, 8, 1, lambda clip: clip, train=False, on_bad_video="ignore")


def test_check_video_statuses(bad_videos):
    statuses = {name: check_video(str(path), 8).status for name, path in bad_videos.items()}
    assert statuses == {
        "good": "ok",
        "empty": "empty",
        "truncated": "unreadable",
        "short": "too_short",
        "claims_more": "frame_count_mismatch",
        "missing": "missing",
    }


def test_check_videos_report_and_csv(bad_videos, tmp_path):
    class Fake:
        frames_per_clip, backend, on_bad_video = 8, "decord", "raise"

        def setup(self):
            self.records = {"train": [VideoRecord(str(p), 0, n) for n, p in bad_videos.items()]}

    results = check_datamodule(Fake())
    text = write_report(results, tmp_path / "check.csv")
    assert "frame_count_mismatch" in text and "claims_more.mp4" in text and "ok: 1" in text
    rows = (tmp_path / "check.csv").read_text().splitlines()
    assert rows[0] == "split,path,status,frames,message" and len(rows) == 7


def test_fit_skips_bad_videos_and_logs_the_count(bad_videos, tmp_path):
    from vmp_lightning.cli import build_cli

    good = [ramp_video(tmp_path / f"g{i}.mp4", frames=24) for i in range(3)]
    lines = [f"{p} {i % 2}" for i, p in enumerate(good)] + [f"{bad_videos['truncated']} 1"]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "val.txt").write_text(f"{good[0]} 0\n{bad_videos['empty']} 1\n")
    args = [
        "fit",
        "--data=vmp_lightning.data.VideoListDataModule",
        f"--data.train_list={tmp_path / 'train.txt'}",
        f"--data.val_list={tmp_path / 'val.txt'}",
        "--data.on_bad_video=skip",
        "--data.num_frames=4",
        "--data.stride=1",
        "--data.crop_size=32",
        "--data.short_side=[32,36]",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--trainer.max_epochs=1",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
    ]
    with pytest.warns(UserWarning, match="truncated.mp4") as caught:
        cli = build_cli(args)
    assert cli.trainer.callback_metrics["data/bad_videos_train"] == 1
    assert cli.trainer.callback_metrics["data/bad_videos_val"] == 1
    assert sum("truncated.mp4" in str(w.message) for w in caught) == 1  # reported once


def test_check_videos_command(bad_videos, tmp_path, capsys):
    from vmp_lightning.cli import main

    (tmp_path / "list.txt").write_text("\n".join(f"{p} {i % 2}" for i, p in enumerate(bad_videos.values())) + "\n")
    args = [
        "check-videos",
        "--data=vmp_lightning.data.VideoListDataModule",
        f"--data.train_list={tmp_path / 'list.txt'}",
        f"--data.val_list={tmp_path / 'list.txt'}",
        "--data.num_frames=8",
        f"--out={tmp_path / 'report.csv'}",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    output = capsys.readouterr().out
    for status in ("missing", "empty", "unreadable", "too_short", "frame_count_mismatch"):
        assert status in output
    assert len((tmp_path / "report.csv").read_text().splitlines()) == 1 + 6


def test_missing_dataset_root_is_a_clean_cli_error(tmp_path):
    from tests.test_cli import run_cli

    result = run_cli(["fit", "--data=vmp_lightning.data.HMDB51DataModule", f"--data.root={tmp_path / 'none'}"])
    assert result.returncode == 2
    assert "vmp-lightning: error: missing:" in result.stderr and "Traceback" not in result.stderr
    assert "expected layout" in result.stderr
