"""MPII Cooking 2 (data/datasets/mpii_cooking2.py): the v7.3 annotation, intervals, preparation into lists."""

from __future__ import annotations

import pytest
import torch

from helpers import SMALL, brightness_index, ramp_video
from vmp_lightning.data import (
    DatasetLayoutError,
    MPIICooking2DataModule,
    open_video,
    read_frames,
    read_mpii_cooking2,
)
from vmp_lightning.data.datasets.mpii_cooking2 import prepare_mpii_cooking2
from vmp_lightning.harness.smoke import write_mat73


@pytest.fixture
def mpii(tmp_path):
    root = tmp_path / "mpii"
    (root / "experimentalSetup").mkdir(parents=True)
    (root / "experimentalSetup" / "sequencesTrainAttr.txt").write_text("s08-d02\ns09-d03\n")
    (root / "experimentalSetup" / "sequencesVal.txt").write_text("s10-d04\n")
    (root / "experimentalSetup" / "sequencesTest.txt").write_text("s11-d05\ns12-d06\n")
    for sequence in ("s08-d02", "s09-d03", "s10-d04", "s11-d05"):  # s12-d06 has no annotation
        ramp_video(root / "videos" / f"{sequence}-cam-002.avi", frames=60, step=4)
    rows = [  # file, start, end, activity
        ("s08-d02-cam-002", 5, 16, "cut dice"),
        ("s08-d02-cam-002", 20, 31, "peel"),
        ("s08-d02-cam-002", 5, 12, "peel"),  # the same start frame as the first: another clip
        ("s08-d02-cam-002", 20, 31, "peel"),  # an exact repeat: read once
        ("s08-d02-cam-001", 5, 16, "peel"),  # another camera: not used
        ("s09-d03-cam-002", 10, 21, "background activity"),  # not an attribute: not a class
        ("s10-d04-cam-002", 30, 41, "cut dice"),
        ("s11-d05-cam-002", 0, 11, "peel"),
    ]
    write_mat73(
        root / "attributesAnnotations_MPII-Cooking-2.mat",
        {
            "fileName": [r[0] for r in rows],
            "startFrame": [r[1] for r in rows],
            "endFrame": [r[2] for r in rows],
            "activity": [r[3] for r in rows],
            "attributeMap": ["cut dice", "peel", "knife", "carrot"],
        },
    )
    return root


def test_mpii_cooking2_reads_the_v73_annotation(mpii):
    annotations = read_mpii_cooking2(mpii)
    assert annotations.class_names == ["cut dice", "peel"]
    train = annotations.splits["train"]
    assert [(r.video_id, r.label, r.start_frame, r.end_frame) for r in train] == [
        ("s08-d02-cam-002_5-16_cut_dice", 0, 5, 16),
        ("s08-d02-cam-002_20-31_peel", 1, 20, 31),
        ("s08-d02-cam-002_5-12_peel", 1, 5, 12),
    ]
    assert [r.video_id for r in annotations.splits["val"]] == ["s10-d04-cam-002_30-41_cut_dice"]
    assert [r.video_id for r in annotations.splits["test"]] == ["s11-d05-cam-002_0-11_peel"]
    assert any("1 annotations repeat another exactly" in n for n in annotations.notes)
    assert any("s12-d06-cam-002 has no annotated activity" in n for n in annotations.notes)
    assert any("s09-d03-cam-002 has no annotated activity" in n for n in annotations.notes)


def test_mpii_cooking2_clips_come_from_the_interval(mpii):
    module = MPIICooking2DataModule(root=str(mpii), **{**SMALL, "frames_per_clip": 12})
    module.setup()
    dataset = module.dataset("val")
    item = dataset[0]
    assert item["video"].shape == (3, 12, 32, 32)
    raw = read_frames(open_video(mpii / "videos" / "s10-d04-cam-002.avi", "pyav"), [30, 41])
    assert brightness_index(torch.from_numpy(raw), step=4) == [30, 41]


def test_mpii_cooking2_missing_annotation_is_named(mpii):
    (mpii / "attributesAnnotations_MPII-Cooking-2.mat").unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)annotation: .*attributesAnnotations_MPII-Cooking-2.mat"):
        read_mpii_cooking2(mpii)


def test_prepare_mpii_cooking2_writes_a_root_the_data_module_reads_with_the_same_frames(mpii, tmp_path):
    out = tmp_path / "mpii_prepared"
    report = prepare_mpii_cooking2(mpii, out, short_side=None, gop=4)
    assert report.written == 3 and not report.problems  # the annotated videos of the camera that a list names
    assert sorted(p.name for p in (out / "videos").iterdir()) == [
        "s08-d02-cam-002.mp4",
        "s10-d04-cam-002.mp4",
        "s11-d05-cam-002.mp4",
    ]
    original, prepared = read_mpii_cooking2(mpii), read_mpii_cooking2(out)
    assert [r.video_id for r in prepared.splits["train"]] == [r.video_id for r in original.splits["train"]]
    record = prepared.splits["train"][1]
    assert record.path.endswith(".mp4") and (record.start_frame, record.end_frame) == (20, 31)
    frames = read_frames(open_video(record.path), [record.start_frame, record.end_frame])
    assert brightness_index(torch.from_numpy(frames), step=4) == [20, 31]  # the official frame numbers
