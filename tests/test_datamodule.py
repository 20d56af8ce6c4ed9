"""The data module (data/datamodule.py): the frame count the model asks for, uint8 clips (the model normalises
them), bad videos counted in a run."""

from __future__ import annotations

import pytest
import torch

from helpers import QUIET, REPO, TINY_SPEC, ramp_video
from vmp_lightning.cli import build_cli
from vmp_lightning.data import (
    SyntheticMotionDataModule,
)
from vmp_lightning.normalization import Normalization


def tiny_module(root: str, **overrides) -> SyntheticMotionDataModule:
    settings = dict(crop_size=32, short_side=(32, 36), batch_size=4, num_workers=0)
    return SyntheticMotionDataModule(root=root, **{**TINY_SPEC, **settings, **overrides})


def test_clips_hold_the_frames_the_model_asks_for_as_uint8(synthetic_root):
    base, vmp = tiny_module(synthetic_root), tiny_module(synthetic_root, frames_per_clip=9)
    for module in (base, vmp):
        module.setup("fit")
    assert base.frames_per_clip == 8 and vmp.frames_per_clip == 9
    batch = next(iter(vmp.train_dataloader()))
    assert batch["video"].shape == (4, 3, 9, 32, 32) and batch["video"].dtype == torch.uint8
    assert vmp.on_after_batch_transfer(batch, 0)["video"].dtype == torch.uint8  # the model normalises
    assert next(iter(base.val_dataloader()))["video"].shape[2] == 8
    assert {len(base.records[s]) for s in ("train", "val", "test")} == {24, 8, 12}
    assert base.num_classes == 4 and base.class_names[:2] == ["right", "left"]


def test_eval_clips_are_deterministic_and_normalise_back_to_their_pixels(synthetic_root):
    module = tiny_module(synthetic_root, frames_per_clip=9)
    module.setup("test")
    dataset = module.dataset("test")
    first, again = dataset[0], dataset[0]
    torch.testing.assert_close(first["video"], again["video"])
    normalization = Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    video = normalization.apply(first["video"])
    pixels = normalization.invert(video)
    assert pixels.min() >= 0 and pixels.max() <= 1
    torch.testing.assert_close(pixels * 255, first["video"].float(), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="uint8"):
        normalization.apply(video)
    assert first["video_id"] == module.records["test"][0].video_id and first["label"] == 0


def test_fit_skips_bad_videos_and_logs_the_count(bad_videos, tmp_path):
    good = [ramp_video(tmp_path / f"g{i}.mp4", frames=24) for i in range(3)]
    lines = [f"{p} {i % 2}" for i, p in enumerate(good)] + [f"{bad_videos['truncated']} 1"]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "val.txt").write_text(f"{good[0]} 0\n{bad_videos['empty']} 1\n")
    args = [
        "fit",
        "--data=vmp_lightning.data.VideoListDataModule",
        f"--data.train_list={tmp_path / 'train.txt'}",
        f"--data.val_list={tmp_path / 'val.txt'}",
        "--data.on_bad_video=skip",
        "--model.num_frames=4",
        "--data.stride=1",
        "--data.crop_size=32",
        "--data.short_side=[32,36]",
        "--data.batch_size=2",
        "--data.num_workers=0",
        "--trainer.max_epochs=1",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_progress_bar=false",
    ]
    with pytest.warns(UserWarning, match="truncated.mp4") as caught:
        cli = build_cli(args)
    assert cli.trainer.callback_metrics["data/bad_videos_train"] == 1
    assert cli.trainer.callback_metrics["data/bad_videos_val"] == 1
    assert sum("truncated.mp4" in str(w.message) for w in caught) == 1  # reported once


FOLDER_DATASET = '''
"""Clips in <root>/<class>/<video>.mp4; every third video of a class is held out for validation and test."""

from pathlib import Path

from vmp_lightning.data import VideoDataModule, VideoRecord


class FolderDataModule(VideoDataModule):
    def __init__(self, root: str, **kwargs) -> None:
        super().__init__(**kwargs)  # every base option (stride, backend, on_bad_video, ...) passes on
        self.root = Path(root)

    @property
    def class_names(self) -> list[str]:
        return sorted(path.name for path in self.root.iterdir() if path.is_dir())

    def load_records(self, split: str) -> list[VideoRecord]:
        records = []
        for label, name in enumerate(self.class_names):
            for i, path in enumerate(sorted((self.root / name).glob("*.mp4"))):
                if (i % 3 == 2) == (split != "train"):
                    records.append(VideoRecord(str(path), label, f"{name}/{path.stem}"))
        return records
'''


def test_a_new_dataset_is_one_module(tmp_path, monkeypatch):
    """The manual's example: a data module in a file of its own runs through the CLI with the base options."""
    assert FOLDER_DATASET.strip() in (REPO / "docs" / "datasets.md").read_text()  # the manual shows this code
    (tmp_path / "folder_dataset.py").write_text(FOLDER_DATASET)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("jump", "walk"):
        for i in range(3):
            ramp_video(tmp_path / "clips" / name / f"{i:04d}.mp4", frames=16)
    config = tmp_path / "folder.yaml"
    config.write_text(
        f"data:\n  class_path: folder_dataset.FolderDataModule\n  init_args:\n    root: {tmp_path / 'clips'}\n"
        "    stride: 2\n    crop_size: 32\n    short_side: [32, 36]\n    batch_size: 2\n"
        "    num_workers: 0\n    backend: pyav\n    on_bad_video: skip\n"
    )
    args = [f"--config={config}", "--model.num_frames=4", "--model.vmp=true", "--trainer.fast_dev_run=1"]
    args.append("--trainer.logger=false")
    cli = build_cli(["fit", *args, f"--trainer.default_root_dir={tmp_path}", *QUIET])
    assert cli.datamodule.backend == "pyav" and cli.datamodule.frames_per_clip == 5
    assert cli.datamodule.class_names == ["jump", "walk"] and len(cli.datamodule.records["val"]) == 2
    assert cli.trainer.state.finished and cli.trainer.global_step == 1


def test_validation_is_held_out_of_training_per_class_by_seed():
    """A class-stratified, seeded part of the training list, the same whatever the listing order; never a class's
    last training video; 0 holds nothing out."""
    from vmp_lightning.data import VideoRecord
    from vmp_lightning.data.annotations import hold_out_validation

    train = [VideoRecord(f"/v/{c}{i}.mp4", label, f"{c}/{i}") for label, c in enumerate("abc") for i in range(10)]
    train += [VideoRecord("/v/d0.mp4", 3, "d/0")]  # one video: it stays in training
    kept, held = hold_out_validation(train, 0.2, seed=1)
    assert sorted(r.label for r in held) == [0, 0, 1, 1, 2, 2] and len(kept) + len(held) == len(train)
    assert not {r.video_id for r in kept} & {r.video_id for r in held}
    again = hold_out_validation(list(reversed(train)), 0.2, seed=1)[1]
    assert {r.video_id for r in again} == {r.video_id for r in held}
    assert {r.video_id for r in hold_out_validation(train, 0.2, seed=2)[1]} != {r.video_id for r in held}
    assert hold_out_validation(train, 0.0) == (train, [])
    with pytest.raises(ValueError, match="val_fraction"):
        hold_out_validation(train, 1.0)
