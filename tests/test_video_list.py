"""Generic list files (data/datasets/video_list.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import SMALL, ramp_video
from vmp_lightning.data import DatasetLayoutError, VideoListDataModule, VideoRecord, read_video_lists
from vmp_lightning.data.annotations import Annotations


def test_video_lists_csv_and_space_separated(tmp_path):
    for name in ("a", "b", "c"):
        ramp_video(tmp_path / f"{name}.mp4", frames=12)
    (tmp_path / "train.csv").write_text("path,label\na.mp4,jump\nb.mp4,run\n")
    (tmp_path / "val.txt").write_text("# comment\nc.mp4 run 2 9\n")
    annotations = read_video_lists({"train": tmp_path / "train.csv", "val": tmp_path / "val.txt"}, tmp_path)
    assert annotations.class_names == ["jump", "run"]
    (record,) = annotations.splits["val"]
    assert (record.label, record.start_frame, record.end_frame, record.video_id) == (1, 2, 9, "c.mp4#2-9")
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


def test_videos_with_the_same_name_in_two_folders_stay_apart(tmp_path):
    """``jump/0001.mp4`` and ``walk/0001.mp4`` are two videos: both are evaluated."""
    for folder in ("jump", "walk", "run"):
        ramp_video(tmp_path / folder / "0001.mp4", frames=12)
    (tmp_path / "val.txt").write_text("jump/0001.mp4 0\nwalk/0001.mp4 1\nrun/0001.mp4 2\n")
    annotations = read_video_lists({"val": tmp_path / "val.txt"}, tmp_path)
    assert [r.video_id for r in annotations.splits["val"]] == ["jump/0001.mp4", "walk/0001.mp4", "run/0001.mp4"]
    module = VideoListDataModule(
        train_list=str(tmp_path / "val.txt"), val_list=str(tmp_path / "val.txt"), root=str(tmp_path), **SMALL
    )
    module.setup()
    dataset = module.val_dataloader().dataset
    ids = {dataset[i]["video_id"] for i in range(len(dataset))}
    assert ids == {"jump/0001.mp4", "walk/0001.mp4", "run/0001.mp4"}


def test_a_duplicated_video_id_is_an_error_naming_both_entries(tmp_path):
    ramp_video(tmp_path / "a.mp4", frames=12)
    (tmp_path / "val.txt").write_text("a.mp4 0\na.mp4 1\n")
    with pytest.raises(
        DatasetLayoutError,
        match=r"val: two entries share the video_id 'a\.mp4': .*a\.mp4 \(label 0\) and .*a\.mp4 \(label 1\)",
    ):
        read_video_lists({"val": tmp_path / "val.txt"}, tmp_path)
    records = [VideoRecord("x.mp4", 0, "same"), VideoRecord("y.mp4", 1, "same")]
    with pytest.raises(DatasetLayoutError, match="two entries share the video_id 'same'"):
        Annotations({"test": records}, ["a", "b"])


def test_a_test_list_sharing_videos_with_validation_is_refused_unless_allowed(tmp_path):
    """Selecting the checkpoint on videos it is tested on biases the test: refused, naming both lists and the video.
    Without a test list the validation list is tested, and the run says so."""
    for name in ("a", "b", "c"):
        ramp_video(tmp_path / f"{name}.mp4", frames=12)
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("b.mp4 1\nc.mp4 0\n")
    (tmp_path / "test.txt").write_text("a.mp4 0\nc.mp4 0\n")
    lists = {"train_list": str(tmp_path / "train.txt"), "val_list": str(tmp_path / "val.txt"), "root": str(tmp_path)}
    module = VideoListDataModule(**lists, test_list=str(tmp_path / "test.txt"), **SMALL)
    with pytest.raises(DatasetLayoutError, match=r"test list .*test\.txt and the validation list .*val\.txt share "):
        module.setup()
    with pytest.raises(DatasetLayoutError, match=re.escape("first 'c.mp4'")):
        VideoListDataModule(**lists, test_list=str(tmp_path / "test.txt"), **SMALL).setup()
    allowed = VideoListDataModule(**lists, test_list=str(tmp_path / "test.txt"), test_may_share_val=True, **SMALL)
    allowed.setup()
    assert allowed.test_split == "test" and len(allowed.records["test"]) == 2
    on_validation = VideoListDataModule(**lists, **SMALL)
    with pytest.warns(UserWarning, match="no test_list: testing on the validation list"):
        on_validation.setup()
    assert on_validation.test_split == "val" and on_validation.records["test"] == on_validation.records["val"]


def test_a_run_records_what_it_validated_and_tested_on(tmp_path):
    """The run folder lists the validation videos; testing on the validation list is written in metrics.json."""
    import json

    from helpers import QUIET
    from vmp_lightning.cli import build_cli

    for name in ("a", "b", "c", "d"):
        ramp_video(tmp_path / f"{name}.mp4", frames=16)
    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\n")
    (tmp_path / "val.txt").write_text("c.mp4 0\nd.mp4 1\n")
    data = [f"--data.train_list={tmp_path / 'train.txt'}", f"--data.val_list={tmp_path / 'val.txt'}"]
    data += [f"--data.root={tmp_path}", "--data.crop_size=32", "--data.short_side=[32,36]", "--data.num_workers=0"]
    args = ["fit", "--data=vmp_lightning.data.VideoListDataModule", *data, "--model.num_frames=4", "--data.stride=1"]
    args += ["--trainer.max_epochs=1", "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}", *QUIET]
    cli = build_cli([*args, "--test_after_fit=true"])
    run = Path(cli.trainer.default_root_dir)
    assert (run / "val_videos.txt").read_text().split() == ["c.mp4", "d.mp4"]
    assert json.loads((run / "metrics.json").read_text())["test_split"] == "val"
