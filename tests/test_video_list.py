"""Generic list files (data/datasets/video_list.py)."""

from __future__ import annotations

import re

import pytest

from helpers import ramp_video
from vmp_lightning.data import (
    DatasetLayoutError,
    read_video_lists,
)


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
