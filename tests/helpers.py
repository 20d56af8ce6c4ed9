"""Helpers shared by the test files (fixtures live in conftest.py). Importable as `helpers` by plain `pytest`:
pyproject's ``pythonpath`` puts this folder on the path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import torch

#: Small enough to generate in about a second, big enough for 4 classes and 3 splits.
TINY_SPEC = dict(
    num_classes=4, videos_per_class=(6, 2, 3), video_size=32, video_frames=16, object_size=8, num_distractors=2
)
#: Loader settings for the dataset tests: small crops, 4 frames, no workers.
SMALL = dict(crop_size=32, short_side=(32, 36), frames_per_clip=4, stride=1, batch_size=2, num_workers=0)
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
REPO = Path(__file__).parents[1]


def tiny_data_args(root: str) -> list[str]:
    """CLI flags that point the default data module at the tiny dataset."""
    spec = [f"--data.init_args.{name}={value}" for name, value in TINY_SPEC.items() if name != "videos_per_class"]
    return [
        f"--data.init_args.root={root}",
        *spec,
        f"--data.init_args.videos_per_class=[{','.join(map(str, TINY_SPEC['videos_per_class']))}]",
        "--data.init_args.crop_size=32",
        "--data.init_args.short_side=[32,36]",
        "--data.init_args.batch_size=4",
        "--data.init_args.num_workers=0",
    ]


def fit_args(root: str, tmp_path: Path, *extra: str) -> list[str]:
    """`fit` on the tiny dataset into ``tmp_path``, without a logger."""
    return [
        "fit",
        *tiny_data_args(root),
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false",
        *QUIET,
        *extra,
    ]


def run_cli(
    args: list[str], env: dict | None = None, timeout: int = 300, new_session: bool = False
) -> subprocess.CompletedProcess:
    """`python -m vmp_lightning ARGS` in a child process (with ``new_session``, in a process group of its own,
    as a job under SLURM: a signal to the group reaches it and its loader workers, not the tests)."""
    command = [sys.executable, "-m", "vmp_lightning", *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        start_new_session=new_session,
    )


def ramp_video(path, frames: int = 24, height: int = 32, width: int = 64, fps: float = 10, step: int = 8):
    """Write a video whose frame ``t`` has brightness about ``8 + step * t`` (so sampled indices can be read back
    from the pixels) over a fixed texture; returns the path."""
    from vmp_lightning.data import write_video

    rng = np.random.default_rng(0)
    texture = rng.integers(-6, 7, size=(height, width, 3))
    video = np.stack([np.clip(8 + step * t + texture, 0, 255) for t in range(frames)]).astype(np.uint8)
    write_video(path, video, fps=fps)
    return path


def brightness_index(clip, step: int = 8):
    """Frame indices read back from a ``T x H x W x C`` uint8 clip written by `ramp_video`."""
    return [round((float(frame.float().mean()) - 8) / step) for frame in clip]


def remux_with_timestamps(source, destination, change) -> None:
    """Copy the video packets of ``source`` into ``destination`` (the suffix picks the container) with new
    timestamps: ``change([(pts, dts), ...]) -> [(pts, dts), ...]`` in file order. How real files get odd timestamps
    (remuxers that write pts = dts, timestamp gaps, duplicates) without re-encoding."""
    import av

    with av.open(str(source)) as inp:
        stream = inp.streams.video[0]
        packets = [packet for packet in inp.demux(stream) if packet.size]
        stamps = change([(packet.pts, packet.dts) for packet in packets])
        with av.open(str(destination), "w") as out:
            target = out.add_stream_from_template(stream)
            for packet, (pts, dts) in zip(packets, stamps, strict=True):
                packet.pts, packet.dts, packet.stream = pts, dts, target
                out.mux(packet)


def full_decode(path, keep=None):
    """Every frame of a sequential decode from the start (PyAV, in the decoder's output order): frame i by
    definition. With ``keep`` (a set of indices): ``(frame count, {index: frame})`` for those only."""
    import av

    with av.open(str(path)) as container:
        if keep is None:
            return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
        kept, count = {}, 0
        for count, frame in enumerate(container.decode(video=0), start=1):
            if count - 1 in keep:
                kept[count - 1] = frame.to_ndarray(format="rgb24")
        return count, kept


class SignalAt(L.Callback):
    """Sends ``signal`` before training batch ``batch`` of epoch ``epoch`` (give it by class path) to its own
    process, or with ``group`` to its whole process group as SLURM does (the loader workers too): a preemption
    (SIGTERM), a Ctrl-C (SIGINT) or a crash (SIGKILL) in the middle of an epoch."""

    def __init__(self, epoch: int, batch: int, signal: str = "SIGKILL", group: bool = False) -> None:
        self.epoch, self.batch, self.signal, self.group = epoch, batch, signal, group

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            number = getattr(signal, self.signal)
            os.killpg(os.getpgid(0), number) if self.group else os.kill(os.getpid(), number)


class BatchTrace(L.Callback):
    """Appends ``[epoch, batch, record indices]`` of each training batch, one JSON line, to the file named by
    ``$TRACE_FILE``: what a run trained on, in order."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with open(os.environ["TRACE_FILE"], "a") as handle:
            handle.write(json.dumps([trainer.current_epoch, batch_idx, batch["index"].tolist()]) + "\n")


def read_trace(path: Path) -> list:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


class UserNet(torch.nn.Module):
    """A user's own backbone, given by class path (``helpers.UserNet``): defaults of its own that differ from the
    demo's TinyVideoCNN (``width`` 32, ``dropout`` 0)."""

    def __init__(self, num_classes: int, width: int = 12, dropout: float = 0.5) -> None:
        super().__init__()
        self.width, self.dropout = width, dropout
        self.features = torch.nn.Conv3d(3, width, 3, padding=1)
        self.head = torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(width, num_classes))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(clip).mean((2, 3, 4)))


def tiny_classifier(num_classes: int = 5, **kwargs):
    """A `VideoClassifier` on a 4-wide TinyVideoCNN with Kinetics normalisation, built in Python."""
    from vmp_lightning.backbones import TinyVideoCNN
    from vmp_lightning.classifier import VideoClassifier

    return VideoClassifier(lambda k: TinyVideoCNN(k, width=4), num_classes=num_classes, **kwargs)


class KillDuringSave(L.Callback):
    """SIGKILLs its own process in the middle of the ``save``-th write of ``last.ckpt`` (give it by class path):
    ``write`` half-way through the temporary file, ``fsync`` once it is on disk but not yet renamed, ``rename``
    after the rename, before the folder's fsync. A crash at the worst moment of each step of the writer."""

    def __init__(self, stage: str, save: int = 2) -> None:
        self.stage, self.save, self.seen = stage, save, 0

    def setup(self, trainer, pl_module, stage) -> None:
        import vmp_lightning.checkpointing as checkpointing
        import vmp_lightning.files as files

        fsync, save = files._fsync, checkpointing.torch.save

        def last_write(path) -> bool:  # a path, or the file object the writer gives torch.save
            name = Path(getattr(path, "name", path)).name
            return name.startswith(".last.") and name.endswith(".ckpt")

        def saving(obj, target, *args, **kwargs):
            if last_write(target):
                self.seen += 1
                if self.seen == self.save and self.stage == "write":
                    target.write(b"PK\x03\x04" + b"\0" * 4096)  # a zip begun, never finished
                    target.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
            return save(obj, target, *args, **kwargs)

        def syncing(path) -> None:
            fsync(path)
            if self.seen == self.save and (
                (self.stage == "fsync" and last_write(path)) or (self.stage == "rename" and Path(path).is_dir())
            ):
                os.kill(os.getpid(), signal.SIGKILL)

        checkpointing.torch.save, files._fsync = saving, syncing


class FillDiskAfter(L.Callback):
    """After the first epoch's checkpoints are written, fills the filesystem of the run folder up to ``leave`` bytes
    (another writer filling a shared scratch disk), so that the next checkpoint meets ENOSPC."""

    def __init__(self, leave: int = 200_000) -> None:
        self.leave = leave

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == 1:
            folder = Path(trainer.default_root_dir)
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            (folder.parent / "filler.bin").write_bytes(b"\0" * max(0, free - self.leave))


SEEN_HANDLERS: dict[str, object] = {}


class RecordSignalHandlers(L.Callback):
    """Notes, when training starts, the SIGUSR1 handler in force (Lightning's SLURM requeue installs one)."""

    def on_train_start(self, trainer, pl_module) -> None:
        SEEN_HANDLERS["SIGUSR1"] = signal.getsignal(signal.SIGUSR1)
