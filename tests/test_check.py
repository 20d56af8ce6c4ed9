"""`vmp-lightning check-videos` (data/check.py): statuses, report, CSV, the command."""

from __future__ import annotations

import re

import pytest

from helpers import TINY_SPEC, ramp_video, tiny_data_args
from vmp_lightning.commands import main
from vmp_lightning.data import (
    VideoRecord,
)
from vmp_lightning.data.check import check_datamodule, check_video, write_report


@pytest.mark.parametrize("full", [False, True])
def test_check_video_statuses(bad_videos, full):
    statuses = {name: check_video(str(path), 8, full=full).status for name, path in bad_videos.items()}
    assert statuses == {
        "good": "ok",
        "empty": "empty",
        "truncated": "unreadable",
        "short": "short",  # readable: its clips are filled by the short_videos rule
        "claims_more": "header_overstates",  # readable: reported, not bad, and its real frames are used
        "missing": "missing",
    }
    claims_more = check_video(str(bad_videos["claims_more"]), 8, full=full)
    assert claims_more.header_frames == 24 and 8 <= claims_more.frames < 24
    good = check_video(str(bad_videos["good"]), 8, full=full)
    assert (good.header_frames, good.frames, good.fps, good.size, good.first_error) == (24, 24, 10.0, "64x32", "")


def test_full_check_finds_damage_in_the_middle(tmp_path):
    path = ramp_video(tmp_path / "damaged.mp4", frames=60, height=64, width=64)
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 2000] = bytes(2000)  # a stretch of the media data overwritten
    path.write_bytes(data)
    quick = check_video(str(path), 8)
    assert quick.status == "ok" and quick.frames == 60  # first and last frame decode: the quick check can't see it
    full = check_video(str(path), 8, full=True)
    assert full.status == "damaged" and full.header_frames == 60 and 8 < full.frames < 60
    assert re.match(r"frame \d+: .*Invalid data", full.first_error) and int(full.first_error.split()[1][:-1]) < 60


def test_check_videos_report_and_csv(bad_videos, tmp_path):
    class Fake:
        frames_per_clip, backend, on_bad_video = 8, "decord", "raise"

        def setup(self):
            self.records = {"train": [VideoRecord(str(p), 0, n) for n, p in bad_videos.items()]}

    results = check_datamodule(Fake())
    text = write_report(results, tmp_path / "check.csv")
    assert "header_overstates" in text and "claims_more.mp4" in text and "ok: 1" in text
    rows = (tmp_path / "check.csv").read_text().splitlines()
    assert rows[0] == "split,path,status,header_frames,frames,fps,size,rotation,first_error" and len(rows) == 7


def test_check_videos_command(bad_videos, tmp_path, capsys):
    (tmp_path / "list.txt").write_text("\n".join(f"{p} {i % 2}" for i, p in enumerate(bad_videos.values())) + "\n")
    args = [
        "check-videos",
        "--data=vmp_lightning.data.VideoListDataModule",
        f"--data.train_list={tmp_path / 'list.txt'}",
        f"--data.val_list={tmp_path / 'list.txt'}",
        "--model.num_frames=8",
        f"--out={tmp_path / 'report.csv'}",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    output = capsys.readouterr().out
    for status in ("missing", "empty", "unreadable", "short", "header_overstates"):
        assert status in output
    assert len((tmp_path / "report.csv").read_text().splitlines()) == 1 + 6
    with pytest.raises(SystemExit):
        main([*args, "--full"])
    assert "damaged" not in capsys.readouterr().out  # the bad files here are bad in other ways


def test_check_videos_on_the_default_config(synthetic_root, tmp_path, capsys):
    """No --config: the embedded default's synthetic data module (here pointed at the tiny set) is checked."""
    main(["check-videos", *tiny_data_args(synthetic_root), f"--out={tmp_path / 'report.csv'}"])  # exit 0: returns
    rows = (tmp_path / "report.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * sum(TINY_SPEC["videos_per_class"]) and all(",ok," in row for row in rows[1:])
    assert "ok: 44" in capsys.readouterr().out
