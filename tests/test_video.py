"""Decoder backends (data/video.py): the same frames from each, clear errors for missing, corrupt and unknown."""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers import full_decode, ramp_video
from vmp_lightning.data import (
    SyntheticMotionSpec,
    VideoDecodeError,
    VideoRecord,
    available_backends,
    open_video,
    read_frames,
    render_video,
    write_video,
)
from vmp_lightning.data.clip_dataset import ClipDataset

BACKENDS = available_backends()


def test_decord_and_pyav_are_available():
    assert {"decord", "pyav"} <= set(BACKENDS)


@pytest.fixture(scope="module")
def motion_mp4(tmp_path_factory):
    spec = SyntheticMotionSpec(video_size=64, video_frames=30)
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
    spec = SyntheticMotionSpec(video_size=64, video_frames=30)
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


def test_missing_and_corrupt_videos_name_the_file(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoDecodeError, match=r"nope\.mp4: no such file"):
        open_video(missing)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(VideoDecodeError, match=r"corrupt\.mp4: cannot open video"):
        open_video(corrupt)
    dataset = ClipDataset([VideoRecord(str(missing), 0, "x")], 4, 1, lambda t, crop=0: t, train=False)
    with pytest.raises(VideoDecodeError, match=re.escape(str(missing))):
        dataset[0]


def test_a_video_is_indexed_once_per_machine_and_again_when_it_changes(tmp_path, monkeypatch):
    """The frame index (packets, key frames, the frame-order check) is kept in the cache folder, keyed by path,
    size and mtime: a new process reads it instead of demuxing the file; a rewritten file is indexed again. The
    video's own folder is never written to."""
    from vmp_lightning.data import video as video_module

    monkeypatch.setenv("VMP_LIGHTNING_CACHE", str(tmp_path / "cache"))
    path = ramp_video(tmp_path / "videos" / "a.mp4", frames=30)
    first = video_module.index_video(path)
    assert len(list(video_module.index_cache_folder().glob("*.npz"))) == 1
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["a.mp4"]
    built = []
    monkeypatch.setattr(video_module, "_build_index", lambda p: built.append(p) or first)
    video_module._cached_index.cache_clear()  # as a new process
    again = video_module.index_video(path)
    assert built == [] and again.frames == first.frames and again.untrusted == first.untrusted
    np.testing.assert_array_equal(again.packet_pts, first.packet_pts)
    ramp_video(path, frames=31)  # rewritten: another size and mtime
    video_module.index_video(path)
    assert built == [str(path)]


def test_the_projects_own_avis_read_on_the_fast_frame_exact_path(tmp_path):
    """The smoke layouts' AVIs hold MPEG-4 Part 2 as HMDB-51's do (H.264 in an AVI has no frame times that decord can
    seek by, so it went to PyAV's counting path): decord reads them, frame for frame as a full decode."""
    from vmp_lightning.data.video import DecordReader
    from vmp_lightning.harness.smoke import write_hmdb51

    write_hmdb51(tmp_path / "hmdb51", per_class=1)
    path = next((tmp_path / "hmdb51" / "videos").glob("*/*.avi"))
    reader = open_video(path, "decord")
    assert isinstance(reader, DecordReader)
    indices = [len(reader) - 1, 0, len(reader) // 2, 3]
    np.testing.assert_array_equal(read_frames(reader, indices), full_decode(path)[indices])


def test_a_rotated_phone_video_reads_upright_from_every_backend_and_check_videos_reports_it(tmp_path):
    """A display matrix of 90 degrees (as a phone writes it): decord and torchcodec apply it, and so does PyAV now,
    so one dataset never mixes orientations (also when a file is handed to PyAV by itself)."""
    import shutil
    import subprocess

    from vmp_lightning.data.check import check_video

    if shutil.which("ffmpeg") is None:
        pytest.skip("needs Debian's ffmpeg (make system-deps installs it) to write a display matrix")
    stored = ramp_video(tmp_path / "stored.mp4", frames=6, height=32, width=64)
    rotated = tmp_path / "rotated.mp4"
    command = ["ffmpeg", "-y", "-loglevel", "error", "-i", str(stored), "-c", "copy"]
    subprocess.run([*command, "-metadata:s:v:0", "rotate=90", str(rotated)], check=True)
    upright = np.rot90(open_video(stored, "pyav").read([0, 5]), 1, axes=(1, 2))  # turned counter-clockwise
    for backend in available_backends():
        frames = open_video(rotated, backend).read([0, 5])
        assert frames.shape == (2, 64, 32, 3), backend
        assert np.abs(frames.astype(int) - upright.astype(int)).max() <= 2, backend
    report = check_video(str(rotated), frames_per_clip=4, backend="pyav")
    assert (report.rotation, report.size) == (90, "32x64")
    assert check_video(str(stored), frames_per_clip=4).rotation == 0
