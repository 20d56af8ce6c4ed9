"""Clip cutting shared by the preparation steps (data/prepare.py)."""

from __future__ import annotations

from importlib import import_module

from helpers import ramp_video
from vmp_lightning.commands import main
from vmp_lightning.data import (
    open_video,
    read_frames,
)
from vmp_lightning.data.datasets import PREPARE_INDEX, prepare_commands
from vmp_lightning.data.parallel import map_with_progress
from vmp_lightning.data.prepare import PrepareCommand, cut_clip


def test_cut_clip_resizes_and_keyframes(tmp_path):
    source = ramp_video(tmp_path / "src.mp4", frames=20)
    frames = cut_clip(source, tmp_path / "out.mp4", 4, 13, short_side=64, gop=2)
    reader = open_video(tmp_path / "out.mp4")
    assert frames == 10 and len(reader) == 10 and read_frames(reader, [0]).shape == (1, 64, 128, 3)


def test_prepare_commands_are_found_in_the_dataset_modules():
    """A dataset module's ``PREPARE`` defines its `vmp-lightning prepare` step; the index the command lists without
    importing the modules (Lightning comes with their data modules) says the same."""
    commands = prepare_commands()
    assert list(commands) == ["finegym", "hmdb51", "mpii-cooking2"]
    assert all(isinstance(command, PrepareCommand) for command in commands.values())
    assert set(PREPARE_INDEX) == set(commands)
    for name, (module, summary) in PREPARE_INDEX.items():
        command = import_module(f"vmp_lightning.data.datasets.{module}").PREPARE
        assert command is commands[name] and command.help == summary


def test_prepare_command_runs_the_datasets_step(tmp_path, capsys):
    root = tmp_path / "hmdb51"
    ramp_video(root / "videos" / "wave" / "wave_0.avi", frames=12)
    (root / "splits").mkdir(parents=True)
    (root / "splits" / "wave_test_split1.txt").write_text("wave_0.avi 1\n")
    main(["prepare", "hmdb51", "--root", str(root), "--out", str(tmp_path / "out"), "--short-side", "0", "--gop", "4"])
    out = capsys.readouterr().out
    assert "written 1, already there 0, problems 0" in out
    assert (
        f"next: vmp-lightning check-videos --config configs/data/hmdb51.yaml --data.init_args.root {tmp_path / 'out'}"
        in out
    )
    assert len(open_video(tmp_path / "out" / "videos" / "wave" / "wave_0.mp4")) == 12


def test_parallel_work_gives_what_serial_work_gives(tmp_path, capsys):
    """`map_with_progress` keeps the order and the results over processes, and shows counts on its bar."""
    items = list(range(7))
    assert map_with_progress(square, items, workers=3) == map_with_progress(square, items) == [i * i for i in items]
    map_with_progress(square, items, workers=2, description="squaring", progress=True)
    bar = capsys.readouterr().err
    assert "squaring" in bar and "7/7" in bar


def test_synthetic_generation_in_parallel_writes_the_same_bytes(tmp_path):
    from helpers import TINY_SPEC
    from vmp_lightning.data import SyntheticMotionSpec, generate

    spec = SyntheticMotionSpec(**{**TINY_SPEC, "videos_per_class": (2, 1, 1)})
    serial, parallel = generate(spec, tmp_path / "serial"), generate(spec, tmp_path / "parallel", workers=2)
    files = sorted(p.relative_to(serial) for p in serial.rglob("*.mp4"))
    assert len(files) == 4 * spec.num_classes
    assert all((serial / f).read_bytes() == (parallel / f).read_bytes() for f in files)
    assert (serial / "manifest.csv").read_text() == (parallel / "manifest.csv").read_text()


def square(x: int) -> int:
    return x * x


def test_a_cut_seeks_to_the_key_frame_before_it_and_gives_the_full_decodes_frames(tmp_path, monkeypatch):
    """A long-GOP video with B-frames: a cut near the end decodes from the last key frame before it (not from
    frame 0) and its frames are the full decode's at the same indices, near the start and near the end."""
    import numpy as np

    from helpers import full_decode
    from vmp_lightning.data import write_video
    from vmp_lightning.data.video import PyAVReader

    blocks = np.random.default_rng(0).integers(0, 256, size=(150, 4, 8, 3), dtype=np.uint8)
    video = blocks.repeat(8, axis=1).repeat(8, axis=2)  # 150 frames of 8 x 8 blocks: each frame unlike the others
    source = tmp_path / "long_gop.mp4"
    write_video(source, video, fps=25, gop=50)
    expected = full_decode(source)
    reader = PyAVReader(str(source), num_threads=1)
    starts: list[int] = []
    decoded = reader._decoded
    monkeypatch.setattr(reader, "_decoded", lambda packet: starts.append(packet) or decoded(packet))
    for first, last in [(3, 20), (120, 149)]:
        frames = list(reader.iter_frames(first, last))
        assert [n for n, _ in frames] == list(range(first, last + 1))
        np.testing.assert_array_equal(
            np.stack([f.to_ndarray(format="rgb24") for _, f in frames]), expected[first : last + 1]
        )
    assert starts[0] == 0 and reader.index.keyframe[starts[1]] and 100 <= reader.index.frame_of_packet[starts[1]] <= 120
    assert cut_clip(source, tmp_path / "end.mp4", 120, 149, short_side=None) == 30
    cut = full_decode(tmp_path / "end.mp4").astype(float)  # re-encoded: each frame nearest to its own
    nearest = [int(np.abs(expected.astype(float) - frame).mean(axis=(1, 2, 3)).argmin()) for frame in cut]
    assert nearest == list(range(120, 150))
