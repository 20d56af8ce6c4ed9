"""FineGym (data/datasets/finegym.py): sub-action ids, lists and categories, cutting clips from raw videos or
event clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import SMALL, brightness_index, ramp_video
from vmp_lightning.data import (
    DatasetLayoutError,
    FineGymDataModule,
    SyntheticMotionSpec,
    open_video,
    parse_subaction_id,
    read_finegym,
    read_frames,
    render_video,
    write_video,
)
from vmp_lightning.data.datasets.finegym import prepare_finegym
from vmp_lightning.data.prepare import cut_clip

YOUTUBE = "ab_CD-12345"  # youtube ids may hold "_" and "-"


@pytest.fixture
def finegym(tmp_path):
    root = tmp_path / "finegym"
    annotations = root / "annotations"
    annotations.mkdir(parents=True)
    ids = [f"{YOUTUBE}_E_000001_000005_A_{a:04d}_{a + 1:04d}" for a in range(3)]
    (annotations / "gym99_train_element_v1.1.txt").write_text(f"{ids[0]} 0\n{ids[1]} 98\n")
    (annotations / "gym99_val_element.txt").write_text(f"{ids[2]} 5\n")
    (annotations / "gym99_categories.txt").write_text(
        "Clabel: 0; set: 1; Glabel: 1; (VT) round-off, flic-flac\nClabel: 5; set: 2; Glabel: 9; (FX) salto\n"
    )
    raw = tmp_path / "raw"
    ramp_video(raw / f"{YOUTUBE}.mp4", frames=60, step=4)  # 6 s at 10 fps
    segments = {f"A_{a:04d}_{a + 1:04d}": {"stages": 1, "timestamps": [[0.5 * a, 0.5 * a + 1.0]]} for a in range(3)}
    info = {YOUTUBE: {"E_000001_000005": {"event": 1, "segments": segments, "timestamps": [[1.0, 5.0]]}}}
    (tmp_path / "finegym_annotation_info_v1.1.json").write_text(json.dumps(info))
    return root, raw, tmp_path / "finegym_annotation_info_v1.1.json", ids


def test_subaction_ids_parse():
    assert parse_subaction_id(f"{YOUTUBE}_E_002407_002435_A_0003_0005") == (YOUTUBE, "E_002407_002435", "A_0003_0005")
    with pytest.raises(ValueError, match="not a FineGym sub-action id"):
        parse_subaction_id("A0xAXXysHUo_0003")


def test_prepare_finegym_cuts_subactions_from_raw_videos(finegym):
    root, raw, info, ids = finegym
    with pytest.raises(DatasetLayoutError, match="sub-action clips"):
        read_finegym(root)
    report = prepare_finegym(info, raw, root, short_side=None, gop=4)
    assert report.written == 3 and not report.problems
    # sub-action 1: event starts at 1.0 s, segment [0.5, 1.5] s -> frames 15 .. 25 at 10 fps
    reader = open_video(root / "subactions" / f"{ids[1]}.mp4")
    assert len(reader) == 11
    assert brightness_index(torch.from_numpy(read_frames(reader, [0, 10])), step=4) == [15, 25]


def test_prepare_finegym_prefers_event_clips(finegym, tmp_path):
    root, raw, info, ids = finegym
    # frames that differ a lot from one to the next (noise, a moving object), so each is recognisable after
    # two lossy encodings
    spec = SyntheticMotionSpec(video_size=64, video_frames=60, noise_std=20.0)
    write_video(raw / f"{YOUTUBE}.mp4", render_video(spec, 0, np.random.default_rng(0)), fps=10)
    events = tmp_path / "events"
    cut_clip(raw / f"{YOUTUBE}.mp4", events / f"{YOUTUBE}_E_000001_000005.mp4", 10, 49, None, gop=4)
    report = prepare_finegym(info, events, root, short_side=None, gop=4)
    assert report.written == 3 and not report.problems
    reader = open_video(root / "subactions" / f"{ids[1]}.mp4")  # event frame 5 .. 15 = raw frame 15 .. 25
    clip = read_frames(reader, [0, len(reader) - 1]).astype(int)
    raw_frames = read_frames(open_video(raw / f"{YOUTUBE}.mp4"), list(range(60))).astype(int)
    distance = np.abs(clip[:, None] - raw_frames[None]).mean(axis=(2, 3, 4))
    assert len(reader) == 11 and distance.argmin(axis=1).tolist() == [15, 25]


def test_finegym_reads_lists_and_categories(finegym):
    root, raw, info, ids = finegym
    prepare_finegym(info, raw, root, short_side=None, gop=4)
    annotations = read_finegym(root)
    assert len(annotations.class_names) == 99 and annotations.class_names[0] == "(VT) round-off, flic-flac"
    assert annotations.class_names[1] == "class_001"
    assert [(r.video_id, r.label) for r in annotations.splits["train"]] == [(ids[0], 0), (ids[1], 98)]
    assert annotations.splits["val"] == []  # one training clip per class: none to hold out; never the test list
    assert [r.video_id for r in annotations.splits["test"]] == [ids[2]]  # the official validation list
    module = FineGymDataModule(root=str(root), **SMALL)
    module.setup()
    assert module.num_classes == 99 and next(iter(module.test_dataloader()))["label"].tolist() == [5]
    assert module.val_dataloader() == []  # no validation videos: no validation
    (root / "annotations" / "gym99_val_element.txt").write_text(f"{ids[2]} 99\n")
    with pytest.raises(DatasetLayoutError, match="label 99"):
        read_finegym(root)
    with pytest.raises(ValueError, match="subset"):
        read_finegym(root, "gym530")


def test_finegym_lists_flat_as_downloaded_and_v1_0_are_read(finegym):
    """The site serves the lists as single files: flat in the root; v1.0 training lists are read when there is no
    v1.1, and v1.1 wins, with a note, when both are there."""
    root, raw, info, ids = finegym
    for path in (root / "annotations").iterdir():
        path.rename(root / path.name)
    (root / "annotations").rmdir()
    report = prepare_finegym(info, raw, root, short_side=None, gop=4)
    assert report.written == 3 and not report.problems
    flat = read_finegym(root, val_fraction=0)
    assert [r.video_id for r in flat.splits["train"]] == ids[:2] and flat.class_names[0] == "(VT) round-off, flic-flac"
    (root / "gym99_train_element_v1.1.txt").rename(root / "gym99_train_element_v1.0.txt")
    assert [r.video_id for r in read_finegym(root, val_fraction=0).splits["train"]] == ids[:2]
    (root / "gym99_train_element_v1.1.txt").write_text(f"{ids[0]} 0\n")
    both = read_finegym(root, val_fraction=0)
    assert [r.video_id for r in both.splits["train"]] == ids[:1]
    assert both.notes == ["gym99_train_element_v1.1.txt read, not gym99_train_element_v1.0.txt"]


def test_finegym_without_lists_is_a_layout_report_from_prepare_too(finegym, capsys):
    root, raw, info, _ = finegym
    (root / "annotations" / "gym99_val_element.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)no gym99_train_element_v1.1.txt \(or v1.0\).*expected layout"):
        prepare_finegym(info, raw, root)
    from vmp_lightning.commands import main

    with pytest.raises(SystemExit) as stop:
        main(["prepare", "finegym", "--annotation", str(info), "--videos", str(raw), "--root", str(root)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and "gym99_val_element.txt" in err
