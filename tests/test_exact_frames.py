"""Frame i is the i-th frame of a full sequential decode: every backend returns exactly those frames, whatever the
container's timestamps say (B-frames with pts = dts, gaps, duplicates, swapped stamps, AVI without stamps)."""

from __future__ import annotations

import warnings

import av
import numpy as np
import pytest

from helpers import full_decode, remux_with_timestamps
from vmp_lightning.data import (
    SyntheticMotionSpec,
    available_backends,
    open_video,
    read_frames,
    render_video,
    write_video,
)
from vmp_lightning.data.video import _WARNED, PyAVReader, index_video

FRAMES = 120


def shift_after(stamps, first: int, offset: int):
    return [
        (p + offset * (i >= first), None if d is None else d + offset * (i >= first)) for i, (p, d) in enumerate(stamps)
    ]


def swap(stamps, place: int):
    pts = [p for p, _ in stamps]
    pts[place], pts[place + 1] = pts[place + 1], pts[place]
    return [(p, None) for p in pts]


#: name -> (container, timestamp change, why the index distrusts the timestamps ('' = trusted))
MESSY = {
    "b_frames.mp4": ("mp4", lambda t: t, ""),
    "pts_equals_dts.mp4": ("mp4", lambda t: [(d + 1024, d + 1024) for _, d in t], "decoder's frame order differs"),
    "pts_equals_dts.mkv": ("mkv", lambda t: [(d + 1024, None) for _, d in t], "decoder's frame order differs"),
    "gap.mp4": ("mp4", lambda t: shift_after(t, 60, 51200), ""),
    "gap.mkv": ("mkv", lambda t: shift_after([(p, None) for p, _ in t], 60, 51200), ""),
    "duplicated.mkv": (
        "mkv",
        lambda t: [(t[i - 1][0] if i % 10 == 5 else p, None) for i, (p, _) in enumerate(t)],
        "duplicated timestamps",
    ),
    "swapped.mkv": ("mkv", lambda t: swap(t, 21), "decoder's frame order differs"),
}


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """The same H.264 stream (B-frames, key frame every 12) in files with different timestamps."""
    folder = tmp_path_factory.mktemp("messy")
    spec = SyntheticMotionSpec(video_size=64, video_frames=FRAMES)
    frames = render_video(spec, 0, np.random.default_rng(0))
    frames[:, :16, :16] = (np.arange(FRAMES) * 2).reshape(-1, 1, 1, 1)  # every frame different
    source = folder / "source.mp4"
    write_video(source, frames, fps=30, gop=12)
    with av.open(str(source)) as container:
        assert any(p.pts != p.dts for p in container.demux(video=0) if p.size), "the source needs B-frames"
    paths = {"source": source}
    for name, (_, change, _) in MESSY.items():
        paths[name] = folder / name
        remux_with_timestamps(source, paths[name], change)
    paths["no_timestamps.avi"] = folder / "no_timestamps.avi"
    write_video(paths["no_timestamps.avi"], frames, fps=30, gop=12)
    return paths


def index_sets(seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    sets = [sorted(rng.choice(FRAMES, 8, replace=False).tolist()) for _ in range(4)]
    return [*sets, [119], [0, 1, 2], list(rng.integers(0, FRAMES, 6)), list(range(55, 70))]  # unsorted, repeats


@pytest.mark.parametrize("name", [*MESSY, "no_timestamps.avi"])
def test_every_backend_returns_the_frames_of_a_full_decode(messy, name):
    path = messy[name]
    expected = full_decode(path)
    assert len(expected) == FRAMES
    for backend in available_backends():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = open_video(path, backend)
        assert len(reader) == FRAMES, backend
        for indices in index_sets(len(name)):
            np.testing.assert_array_equal(
                read_frames(reader, indices), expected[indices], err_msg=f"{backend} {indices}"
            )


@pytest.mark.parametrize("name", MESSY)
def test_the_index_trusts_only_timestamps_that_give_the_decoders_order(messy, name):
    reason = MESSY[name][2]
    index = index_video(messy[name])
    assert index.frames == FRAMES
    assert (reason in index.untrusted) if reason else index.untrusted == ""
    assert "timestamps" in index_video(messy["no_timestamps.avi"]).untrusted


def test_a_backend_that_would_return_wrong_frames_is_replaced_with_a_warning(messy):
    path = messy["pts_equals_dts.mp4"]
    _WARNED.discard(str(path))  # said once per process and file; the test above may have heard it
    with pytest.warns(UserWarning, match=r"pts_equals_dts\.mp4: .*decord would return wrong frames"):
        reader = open_video(path, "decord")
    assert isinstance(reader, PyAVReader)
    import decord

    indices = [50, 100]
    alone = decord.VideoReader(str(path)).get_batch(indices).asnumpy()  # what decord alone returns after a seek
    expected = full_decode(path)[indices]
    assert not np.array_equal(alone[1], expected[1]), "decord alone misnumbers frame 100 of this file"
    np.testing.assert_array_equal(read_frames(reader, indices), expected)


def test_pyav_checks_the_order_of_every_decode(messy):
    """A swap past the index's check window is caught while decoding: the reader counts instead."""
    swapped = messy["source"].with_name("late_swap.mkv")
    remux_with_timestamps(messy["source"], swapped, lambda t: swap(t, 81))
    assert index_video(swapped).untrusted == ""  # outside the checked start
    expected = full_decode(swapped)
    np.testing.assert_array_equal(read_frames(open_video(swapped, "pyav"), [80, 81, 82, 83]), expected[80:84])


def test_an_avi_where_decord_finds_no_frame_times_is_read_by_pyav(tmp_path):
    """H.264 in an AVI without B-frames (all key frames here): the timestamps are in order, but decord finds no
    frame times in it and returns frame 0 for every random read; open_video sees that and hands the file to PyAV."""
    import decord

    frames = np.stack([np.full((32, 64, 3), 8 + 2 * t, np.uint8) for t in range(60)])
    path = tmp_path / "intra.avi"
    write_video(path, frames, fps=30, gop=1)
    expected = full_decode(path)
    indices = [12, 44, 3, 59]
    alone = decord.VideoReader(str(path)).get_batch(indices).asnumpy()
    assert not np.array_equal(alone, expected[indices]), "decord alone misreads this file"
    with pytest.warns(UserWarning, match="decord finds no frame times"):
        reader = open_video(path, "decord")
    assert isinstance(reader, PyAVReader)
    np.testing.assert_array_equal(read_frames(reader, indices), expected[indices])


def test_decords_timestamp_check_runs_once_per_unchanged_file_and_again_when_it_changes(tmp_path, monkeypatch):
    """The check costs a small clip's read about 3 %: each later open of the same file reuses its verdict (here a
    file decord misreads, which must still go to PyAV every time), and a rewritten file is checked again."""
    import os

    from vmp_lightning.data.video import DecordReader

    checks = []
    check = DecordReader.has_timestamps
    monkeypatch.setattr(DecordReader, "has_timestamps", lambda self: checks.append(self.path) or check(self))
    frames = np.stack([np.full((32, 64, 3), 8 + 2 * t, np.uint8) for t in range(30)])
    path = tmp_path / "intra.avi"
    write_video(path, frames, fps=30, gop=1)
    expected = full_decode(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        readers = [open_video(path, "decord") for _ in range(3)]
        assert all(isinstance(r, PyAVReader) for r in readers) and checks == [str(path)]
        np.testing.assert_array_equal(read_frames(readers[-1], [20, 3]), expected[[20, 3]])
        write_video(path, frames[:20], fps=30, codec="mpeg4")  # rewritten: decord reads this one
        os.utime(path, ns=(1, 1))
        assert not isinstance(open_video(path, "decord"), PyAVReader) and checks == [str(path)] * 2
