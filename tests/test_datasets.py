"""The paper's datasets and generic lists: each official layout built by the tests from synthetic videos."""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from tests.conftest import brightness_index, ramp_video

from vmp_lightning.data import (
    DatasetLayoutError,
    FineGymDataModule,
    HMDB51DataModule,
    MPIICooking2DataModule,
    VideoListDataModule,
    open_video,
    parse_subaction_id,
    read_finegym,
    read_frames,
    read_hmdb51,
    read_mpii_cooking2,
    read_video_lists,
    render_video,
    write_video,
)
from vmp_lightning.data.prepare import cut_clip, prepare_finegym, prepare_hmdb51, prepare_mpii_cooking2
from vmp_lightning.data.synthetic import SyntheticMotionSpec

SMALL = dict(crop_size=32, short_side=(32, 36), num_frames=4, stride=1, batch_size=2, num_workers=0)


# --- HMDB-51 -----------------------------------------------------------------------------------------------------
@pytest.fixture
def hmdb(tmp_path):
    """3 classes, split files for splits 1 and 2 with train / test / unused entries and one missing video."""
    root = tmp_path / "hmdb51"
    for name in ("wave", "brush_hair", "chew"):
        for i in range(4):
            ramp_video(root / "videos" / name / f"{name}_{i}.avi", frames=12)
        for split in (1, 2):
            lines = [f"{name}_0.avi 1", f"{name}_1.avi {2 if split == 1 else 1}", f"{name}_2.avi 2", f"{name}_3.avi 0"]
            if name == "chew":
                lines.append("chew_lost.avi 1")
            (root / "splits").mkdir(parents=True, exist_ok=True)
            (root / "splits" / f"{name}_test_split{split}.txt").write_text("\n".join(lines) + "\n\n")
    return root


def test_hmdb51_parses_the_official_split_files(hmdb):
    annotations = read_hmdb51(hmdb, split=1)
    assert annotations.class_names == ["brush_hair", "chew", "wave"]
    train, test = annotations.splits["train"], annotations.splits["test"]
    assert len(train) == 3 and len(test) == 6 and annotations.splits["val"] == test
    assert {(r.video_id, r.label) for r in train} == {
        ("brush_hair/brush_hair_0", 0),
        ("chew/chew_0", 1),
        ("wave/wave_0", 2),
    }
    assert all("_3" not in r.video_id for r in train + test)  # 0 = unused
    assert annotations.missing == [str(hmdb / "videos" / "chew" / "chew_lost.avi")]
    assert any("class wave: 1 train / 2 test" in note for note in annotations.notes)
    assert len(read_hmdb51(hmdb, split=2).splits["train"]) == 6


def test_hmdb51_errors_name_what_is_missing(hmdb, tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"(?s)splits folder.*expected layout"):
        read_hmdb51(tmp_path / "nothing")
    with pytest.raises(DatasetLayoutError, match=re.escape("no *_test_split3.txt")):
        read_hmdb51(hmdb, split=3)
    (hmdb / "splits" / "wave_test_split1.txt").write_text("wave_0.avi 7\n")
    with pytest.raises(DatasetLayoutError, match=re.escape("wave_test_split1.txt line 1")):
        read_hmdb51(hmdb, split=1)


def test_hmdb51_datamodule_missing_policy(hmdb):
    with pytest.raises(DatasetLayoutError, match=r"(?s)1 videos listed in the annotation are missing.*chew_lost"):
        HMDB51DataModule(root=str(hmdb), **SMALL).num_classes  # noqa: B018
    module = HMDB51DataModule(root=str(hmdb), on_bad_video="skip", **SMALL)
    with pytest.warns(UserWarning, match="chew_lost"):
        assert module.num_classes == 3
    module.setup()
    batch = next(iter(module.train_dataloader()))
    assert batch["video"].shape == (2, 3, 4, 32, 32)


def test_prepare_hmdb51_writes_mp4_and_split_files(hmdb, tmp_path):
    out = tmp_path / "prepared"
    report = prepare_hmdb51(hmdb, out, short_side=None, gop=4)
    assert report.written == 12 and report.problems == [f"missing video {hmdb / 'videos/chew/chew_lost.avi'}"]
    assert (out / "videos" / "wave" / "wave_0.mp4").is_file()
    assert "wave_0.mp4 1" in (out / "splits" / "wave_test_split1.txt").read_text()
    again = prepare_hmdb51(hmdb, out, short_side=None, gop=4)
    assert again.written == 0 and again.kept == 12  # resumable
    assert len(read_hmdb51(out, 1).splits["test"]) == 6


# --- FineGym -----------------------------------------------------------------------------------------------------
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
    assert brightness_index(_as_tensor(read_frames(reader, [0, 10])), step=4) == [15, 25]


def test_prepare_finegym_prefers_event_clips(finegym, tmp_path):
    root, raw, info, ids = finegym
    # frames that differ a lot from one to the next (noise, a moving object), so each is recognisable after
    # two lossy encodings
    spec = SyntheticMotionSpec(size=64, frames=60, noise_std=20.0)
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


def _as_tensor(frames):
    import torch

    return torch.from_numpy(frames)


def test_finegym_reads_lists_and_categories(finegym):
    root, raw, info, ids = finegym
    prepare_finegym(info, raw, root, short_side=None, gop=4)
    annotations = read_finegym(root)
    assert len(annotations.class_names) == 99 and annotations.class_names[0] == "(VT) round-off, flic-flac"
    assert annotations.class_names[1] == "class_001"
    assert [(r.video_id, r.label) for r in annotations.splits["train"]] == [(ids[0], 0), (ids[1], 98)]
    assert annotations.splits["test"] == annotations.splits["val"]
    module = FineGymDataModule(root=str(root), **SMALL)
    module.setup()
    assert module.num_classes == 99 and next(iter(module.val_dataloader()))["label"].tolist() == [5]
    (root / "annotations" / "gym99_val_element.txt").write_text(f"{ids[2]} 99\n")
    with pytest.raises(DatasetLayoutError, match="label 99"):
        read_finegym(root)
    with pytest.raises(ValueError, match="subset"):
        read_finegym(root, "gym530")


# --- MPII Cooking 2 ------------------------------------------------------------------------------------------
def write_mat73(path: Path, fields: dict[str, list]) -> None:
    """A MATLAB v7.3 file as MATLAB writes one: HDF5 with a 512-byte header, cell arrays of strings as object
    references to uint16 character arrays under #refs#, numbers as float64 column vectors."""
    with h5py.File(path, "w", userblock_size=512) as handle:
        annos, refs = handle.create_group("annos"), handle.create_group("#refs#")
        for key, values in fields.items():
            if isinstance(values[0], str):
                references = []
                for i, text in enumerate(values):
                    chars = np.frombuffer(text.encode("utf-16-le"), dtype="<u2").reshape(-1, 1)
                    references.append(refs.create_dataset(f"{key}_{i}", data=chars).ref)
                annos.create_dataset(key, data=np.array(references, dtype=h5py.ref_dtype).reshape(-1, 1))
            else:
                annos.create_dataset(key, data=np.asarray(values, dtype=np.float64).reshape(-1, 1))
    with path.open("r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .")


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
        ("s08-d02-cam-002_5", 0, 5, 16),
        ("s08-d02-cam-002_20", 1, 20, 31),
    ]
    assert [r.video_id for r in annotations.splits["val"]] == ["s10-d04-cam-002_30"]
    assert [r.video_id for r in annotations.splits["test"]] == ["s11-d05-cam-002_0"]
    assert any("s12-d06-cam-002 has no annotated activity" in n for n in annotations.notes)
    assert any("s09-d03-cam-002 has no annotated activity" in n for n in annotations.notes)


def test_mpii_cooking2_clips_come_from_the_interval(mpii):
    module = MPIICooking2DataModule(root=str(mpii), **{**SMALL, "num_frames": 12})
    module.setup()
    dataset = module.dataset("val")
    item = dataset[0]
    assert item["video"].shape == (3, 12, 32, 32)
    raw = read_frames(open_video(mpii / "videos" / "s10-d04-cam-002.avi", "pyav"), [30, 41])
    assert brightness_index(_as_tensor(raw), step=4) == [30, 41]


def test_mpii_cooking2_missing_annotation_is_named(mpii):
    (mpii / "attributesAnnotations_MPII-Cooking-2.mat").unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)annotation: .*attributesAnnotations_MPII-Cooking-2.mat"):
        read_mpii_cooking2(mpii)


def test_prepare_mpii_cooking2_then_read_as_lists(mpii, tmp_path):
    out = tmp_path / "mpii_clips"
    report = prepare_mpii_cooking2(mpii, out, short_side=None, gop=4)
    assert report.written == 4 and not report.problems
    assert (out / "classes.txt").read_text().split("\n")[:2] == ["cut dice", "peel"]
    assert (out / "train.txt").read_text().splitlines() == [
        "clips/train/cut_dice/s08-d02-cam-002_5.mp4 0",
        "clips/train/peel/s08-d02-cam-002_20.mp4 1",
    ]
    clip = out / "clips" / "train" / "peel" / "s08-d02-cam-002_20.mp4"
    reader = open_video(clip)
    assert len(reader) == 12
    assert brightness_index(_as_tensor(read_frames(reader, [0, 11])), step=4) == [20, 31]
    module = VideoListDataModule(
        train_list=str(out / "train.txt"),
        val_list=str(out / "val.txt"),
        test_list=str(out / "test.txt"),
        root=str(out),
        classes=str(out / "classes.txt"),
        **SMALL,
    )
    module.setup()
    assert module.class_names == ["cut dice", "peel"] and len(module.records["test"]) == 1


# --- generic lists ------------------------------------------------------------------------------------------
def test_video_lists_csv_and_space_separated(tmp_path):
    for name in ("a", "b", "c"):
        ramp_video(tmp_path / f"{name}.mp4", frames=12)
    (tmp_path / "train.csv").write_text("path,label\na.mp4,jump\nb.mp4,run\n")
    (tmp_path / "val.txt").write_text("# comment\nc.mp4 run 2 9\n")
    annotations = read_video_lists({"train": tmp_path / "train.csv", "val": tmp_path / "val.txt"}, tmp_path)
    assert annotations.class_names == ["jump", "run"]
    (record,) = annotations.splits["val"]
    assert (record.label, record.start_frame, record.end_frame, record.video_id) == (1, 2, 9, "c_2")
    (tmp_path / "ints.txt").write_text(f"{tmp_path / 'a.mp4'} 3\nmissing.mp4 0\n")
    annotations = read_video_lists({"train": tmp_path / "ints.txt"}, tmp_path)
    assert annotations.class_names == ["class_0", "class_1", "class_2", "class_3"]
    assert annotations.missing == [str(tmp_path / "missing.mp4")]
    (tmp_path / "classes.txt").write_text("jump\nrun\n")
    (tmp_path / "bad.txt").write_text("a.mp4 swim\n")
    with pytest.raises(DatasetLayoutError, match=re.escape("unknown label 'swim'")):
        read_video_lists({"train": tmp_path / "bad.txt"}, tmp_path, tmp_path / "classes.txt")
    (tmp_path / "three.txt").write_text("a.mp4 1 2\n")
    with pytest.raises(DatasetLayoutError, match="expected 2 or 4 fields"):
        read_video_lists({"train": tmp_path / "three.txt"}, tmp_path)
    with pytest.raises(DatasetLayoutError, match="train list"):
        read_video_lists({"train": tmp_path / "nope.txt"}, tmp_path)


def test_cut_clip_resizes_and_keyframes(tmp_path):
    source = ramp_video(tmp_path / "src.mp4", frames=20)
    frames = cut_clip(source, tmp_path / "out.mp4", 4, 13, short_side=64, gop=2)
    reader = open_video(tmp_path / "out.mp4")
    assert frames == 10 and len(reader) == 10 and read_frames(reader, [0]).shape == (1, 64, 128, 3)
