"""HMDB-51 (data/datasets/hmdb51.py): the official split files, missing videos, preparation."""

from __future__ import annotations

import re

import numpy as np
import pytest

from helpers import SMALL, full_decode, ramp_video
from vmp_lightning.data import (
    DatasetLayoutError,
    HMDB51DataModule,
    read_hmdb51,
)
from vmp_lightning.data.datasets.hmdb51 import prepare_hmdb51


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
    annotations = read_hmdb51(hmdb, split=1, val_fraction=0)
    assert annotations.class_names == ["brush_hair", "chew", "wave"]
    train, test = annotations.splits["train"], annotations.splits["test"]
    assert len(train) == 3 and len(test) == 6 and annotations.splits["val"] == []  # no validation: the paper's way
    assert {(r.video_id, r.label) for r in train} == {
        ("brush_hair/brush_hair_0", 0),
        ("chew/chew_0", 1),
        ("wave/wave_0", 2),
    }
    assert all("_3" not in r.video_id for r in train + test)  # 0 = unused
    assert annotations.missing == [str(hmdb / "videos" / "chew" / "chew_lost.avi")]
    assert any("class wave: 1 train / 2 test" in note for note in annotations.notes)
    split2 = read_hmdb51(hmdb, split=2, val_fraction=0.5).splits
    assert len(split2["train"]) == 3 and len(split2["val"]) == 3  # one of each class's two training videos
    assert {r.label for r in split2["val"]} == {0, 1, 2}
    assert not {r.video_id for r in split2["val"]} & {r.video_id for r in split2["test"] + split2["train"]}


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


def test_prepare_with_workers_writes_what_serial_preparation_writes(hmdb, tmp_path):
    """The same clips and split files; clip bytes may differ as between two serial runs (libx264 encodes a clip
    cut while its source is being decoded slightly differently now and then), so the frames are compared."""
    serial = prepare_hmdb51(hmdb, tmp_path / "serial", short_side=None, gop=4)
    parallel = prepare_hmdb51(hmdb, tmp_path / "parallel", short_side=None, gop=4, workers=3)
    assert (parallel.written, parallel.problems) == (serial.written, serial.problems) and serial.written == 12
    files = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*.*"))
    assert files == sorted(p.relative_to(tmp_path / "parallel") for p in (tmp_path / "parallel").rglob("*.*"))
    for name in files:
        one, two = tmp_path / "serial" / name, tmp_path / "parallel" / name
        if name.suffix == ".txt":
            assert one.read_text() == two.read_text()
        else:
            a, b = full_decode(one).astype(int), full_decode(two).astype(int)
            assert a.shape == b.shape and np.abs(a - b).mean() < 1.0


#: Real HMDB-51 file names carry these characters (e.g. "#20_Rhythm_clap_u_nm_np1_fr_goo_0.avi").
ODD_NAMES = ["#20_Rhythm_clap!_u_nm_np1_fr_goo_0", "Pirates_(Cut)_[HD]_&_more;_1+1_wave_f_cm_np1_ri_med_1"]


@pytest.fixture
def hmdb_as_unpacked(tmp_path):
    """HMDB-51 as its archives unpack: hmdb51_org/<class>/ and testTrainMulti_7030_splits/, odd file names."""
    root = tmp_path / "hmdb51 official"
    for name in ("clap", "wave"):
        lines = []
        for i, stem in enumerate(ODD_NAMES):
            ramp_video(root / "hmdb51_org" / name / f"{stem}_{name}.avi", frames=12)
            lines.append(f"{stem}_{name}.avi {1 + i}")
        (root / "testTrainMulti_7030_splits").mkdir(parents=True, exist_ok=True)
        (root / "testTrainMulti_7030_splits" / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
    return root


def test_hmdb51_reads_the_official_folders_as_they_unpack(hmdb_as_unpacked, tmp_path):
    annotations = read_hmdb51(hmdb_as_unpacked, split=1, val_fraction=0)
    assert annotations.class_names == ["clap", "wave"] and not annotations.missing
    assert [r.video_id for r in annotations.splits["test"]] == [
        f"clap/{ODD_NAMES[1]}_clap",
        f"wave/{ODD_NAMES[1]}_wave",
    ]
    report = prepare_hmdb51(hmdb_as_unpacked, tmp_path / "prepared", short_side=None, gop=4)
    assert report.written == 4 and not report.problems
    assert read_hmdb51(tmp_path / "prepared", split=1, val_fraction=0).splits.keys() == annotations.splits.keys()
    from vmp_lightning.cli import build_cli

    args = ["fit", "--data=vmp_lightning.data.HMDB51DataModule", f"--data.root={hmdb_as_unpacked}", "--data.split=1"]
    args += ["--data.val_fraction=0", "--data.crop_size=32", "--data.short_side=[32,36]", "--data.stride=1"]
    args += ["--data.batch_size=2", "--data.num_workers=0", "--trainer.fast_dev_run=1", "--trainer.logger=false"]
    cli = build_cli([*args, f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"])
    assert cli.trainer.global_step == 1
    from vmp_lightning.data.check import check_datamodule

    assert [c.status for c in check_datamodule(cli.datamodule)] == ["ok"] * 4


def test_class_archives_left_packed_are_named_with_the_command_that_unpacks_them(hmdb_as_unpacked):
    (hmdb_as_unpacked / "hmdb51_org" / "chew.rar").write_bytes(b"Rar!\x1a\x07\x01\x00" + bytes(64))
    (hmdb_as_unpacked / "hmdb51_org" / "notes.rar").write_bytes(b"not an archive")  # not a RAR: not named
    with pytest.raises(DatasetLayoutError) as error:
        read_hmdb51(hmdb_as_unpacked)
    message = str(error.value)
    assert "holds 1 unextracted RAR archives (chew.rar)" in message and "notes.rar" not in message
    assert 'for f in *.rar; do unrar x -o- "$f"' in message
