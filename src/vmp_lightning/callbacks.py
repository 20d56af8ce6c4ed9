"""Callbacks that `VideoClassifier` brings along (`configure_callbacks`), so a plain `Trainer` gets them too, and the
ones the CLI adds (`LatestCheckpoint`, `PredictionWriter`) or a user may add (`PromptMedia`)."""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from vmp_lightning.data.clip_dataset import mix
from vmp_lightning.files import atomic_write, write_text
from vmp_lightning.runs import RunFolder


class BadVideoReporter(L.Callback):
    """Reports the videos the loader could not read and replaced (``data.on_bad_video: skip``): each file once,
    as a warning, and the count per epoch as ``data/bad_videos_<stage>``, summed over ranks (logged once per
    epoch: a `log` call per step cost more than the rest of this callback)."""

    def __init__(self) -> None:
        self.reported: set[str] = set()
        self.counts: dict[str, int] = {}  # stage -> bad videos in this epoch

    def _count(self, batch: Any, stage: str) -> None:
        bad = [entry for entry in batch.get("bad_video", []) if entry] if isinstance(batch, dict) else []
        for entry in bad:
            if entry not in self.reported:
                self.reported.add(entry)
                rank_zero_warn(f"skipped unreadable video (replaced by the next one of the split): {entry}")
        self.counts[stage] = self.counts.get(stage, 0) + len(bad)

    def _log(self, pl_module: L.LightningModule, stage: str) -> None:
        count = torch.tensor(float(self.counts.pop(stage, 0)), device=pl_module.device)
        pl_module.log(f"data/bad_videos_{stage}", count, on_epoch=True, reduce_fx="sum", sync_dist=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._count(batch, "train")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._count(batch, "val")

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._count(batch, "test")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._log(pl_module, "train")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._log(pl_module, "val")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._log(pl_module, "test")


class BatchSeeding(L.Callback):
    """With a seed, each training batch's randomness in the main process (dropout, anything the model draws)
    starts from ``(seed, epoch, batch, rank)``: a run resumed at any step, from any checkpoint, continues exactly
    as the uninterrupted run did (each clip's own randomness comes from the sampler's tokens, `EpochShuffle`)."""

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        seed = os.environ.get("PL_GLOBAL_SEED")
        if seed is not None:
            value = mix(int(seed), trainer.current_epoch, batch_idx, trainer.global_rank)
            random.seed(value)
            np.random.seed(value % 2**32)
            torch.manual_seed(value)


class StoppedBySignal(SIGTERMException):
    """A fit stopped between two batches on a signal, its step saved (`LatestCheckpoint`): the process exits with
    128 + the signal's number (143 SIGTERM, 130 Ctrl-C, 140 SIGUSR2), as a shell reports a process the signal
    ended, so a harness or a job script knows to start nothing more."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class Preemption(L.Callback):
    """SIGTERM (SLURM's preemption or time limit, sent to every process of the job) and a first Ctrl-C stop a fit
    between two batches, at the same step on every process, where `LatestCheckpoint` saves it: resumed, the run
    ends as if never stopped. The handler only notes the signal; at each batch end the processes agree (one
    reduction under DDP) and the next batch start stops (`StoppedBySignal`: exit 128 + the signal's number). A
    second Ctrl-C stops at once (Lightning's own Ctrl-C path: exit 1). Lightning's own SIGTERM handler broadcasts
    from inside the signal handler, which breaks the collective it interrupts (gloo aborts) and lets a rank stop
    alone."""

    def __init__(self) -> None:
        self.noted = self.agreed = 0
        self._told: dict[int, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.noted = self.agreed = 0
        if threading.current_thread() is threading.main_thread():  # Lightning restores the originals at teardown
            signals = [signal.SIGTERM, signal.SIGINT]
            if os.environ.get("SUBMITIT_EXECUTOR"):  # submitit's warning before the time limit (harness/slurm.py)
                signals.append(signal.SIGUSR2)
            for signum in signals:
                previous = signal.signal(signum, self._note)
                if getattr(previous, "notes_stops", False):  # a caller that stops after this run (the harness)
                    self._told[signum] = previous

    def _note(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C: KeyboardInterrupt now
        self.noted = self.noted or int(signum)
        if signum in self._told:
            self._told[signum](signum, frame)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if trainer.world_size == 1:  # nothing to agree on: no tensor, no device synchronisation per step
            self.agreed = self.noted
        else:
            noted = torch.tensor(float(self.noted), device=pl_module.device)
            self.agreed = int(trainer.strategy.reduce(noted, reduce_op="max").item())
        if self.agreed:
            rank_zero_info(f"{signal.Signals(self.agreed).name}: stopping after this batch")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.agreed:
            raise StoppedBySignal(self.agreed)


class RunFacts(L.Callback):
    """At the start of a fit, says and logs what the run trains at: the effective batch the learning rate is tuned
    for (processes x batch x accumulation) and how much of ``init_checkpoint`` loaded; and writes the videos it
    validates on into the run folder (``val_videos.txt``: held out of the training list for HMDB-51 and FineGym)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logged: dict[str, Any] = {}
        report = getattr(pl_module, "checkpoint_report", None)
        if report is not None:
            logged = {f"init_checkpoint/{k}": v for k, v in report.counts().items()}
            logged["init_checkpoint/fraction"] = report.fraction
        batch = getattr(trainer.datamodule, "batch_size", None)
        if batch:
            processes, accumulate = trainer.world_size, trainer.accumulate_grad_batches
            logged["effective_batch_size"] = processes * batch * accumulate
            rank_zero_info(
                f"effective batch {logged['effective_batch_size']} = {processes} process{'es' * (processes > 1)} x "
                f"batch {batch} x {accumulate} accumulated"
            )
        if pl_module.logger is not None and logged:
            pl_module.logger.log_hyperparams(logged)
        validation = getattr(trainer.datamodule, "records", {}).get("val")
        if validation and trainer.is_global_zero:
            from vmp_lightning.loggers import run_directory

            folder = run_directory(trainer)
            folder.mkdir(parents=True, exist_ok=True)
            write_text(RunFolder(folder).validation_list, "".join(f"{record.video_id}\n" for record in validation))


class LatestCheckpoint(ModelCheckpoint):
    """``last.ckpt`` in the run's checkpoint folder: the latest state, rewritten at every epoch end whatever the
    monitored metric does (Lightning's ``save_last`` only follows a save of the monitored checkpoint), and, on
    SIGTERM (preemption) or Ctrl-C, the state of the current step, with the command that resumes it."""

    def __init__(self) -> None:
        super().__init__(filename=Path(RunFolder.LAST).stem, monitor=None, save_top_k=1, enable_version_counter=False)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        """A run folder spelled otherwise than when it was saved (relative / absolute, through a symlink) is the same
        folder: every checkpoint callback gets its saved state back, its best score and path included (Lightning
        compares the spellings and drops them, keeping a second best checkpoint)."""
        live = {callback.state_key: callback.dirpath for callback in trainer.checkpoint_callbacks}
        for key, state in checkpoint.get("callbacks", {}).items():
            saved = state.get("dirpath") if isinstance(state, dict) else None
            if live.get(key) and saved and saved != live[key] and _same_folder(saved, live[key]):
                state["dirpath"] = live[key]

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking and not trainer.fast_dev_run
        if not isinstance(exception, (SIGTERMException, KeyboardInterrupt)) or not fitting:
            return
        if any(not torch.isfinite(p).all() for p in pl_module.parameters()):
            rank_zero_warn("interrupted with non-finite weights: no checkpoint written")
            return
        path = Path(self.dirpath) / f"{self.filename}{self.FILE_EXTENSION}"
        trainer.save_checkpoint(path, weights_only=False)  # the full state: optimizer, loops, callbacks
        signum = getattr(exception, "signum", signal.SIGTERM if isinstance(exception, SIGTERMException) else None)
        what = signal.Signals(signum).name if signum is not None else "Ctrl-C"
        run = RunFolder.of_checkpoint(path)
        config = f" --config {run.config}" if run is not None else ""
        rank_zero_warn(
            f"{what}: stopped at epoch {trainer.current_epoch}, step {trainer.global_step}; saved {path}\n"
            f"resume with: vmp-lightning fit{config} --ckpt_path {path}"
        )


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # either is gone (moved, another machine's path)
        return False


def tested_checkpoint(trainer: L.Trainer) -> str:
    """The checkpoint a finished fit is tested on: the best of the monitored checkpoint callback, else (no
    validation, the paper's protocol: train all epochs, test the last) `LatestCheckpoint`'s ``last.ckpt``."""
    callback = trainer.checkpoint_callback
    if callback is not None and callback.monitor and callback.best_model_path:
        return callback.best_model_path
    latest = next((c for c in trainer.callbacks if isinstance(c, LatestCheckpoint)), None)
    path = Path(latest.dirpath) / f"{latest.filename}{latest.FILE_EXTENSION}" if latest and latest.dirpath else None
    return str(path) if path is not None and path.is_file() else getattr(callback, "best_model_path", "")


class PredictionWriter(BasePredictionWriter):
    """What ``vmp-lightning predict`` writes into the run folder (a run's own when ``--ckpt_path`` is one of its
    checkpoints): ``predictions.csv`` (video_id, view, label, logit_0 .. logit_{K-1}, one row per clip view) and
    ``predictions.pt`` (the same as tensors); ``_rank<r>`` files per process under DDP."""

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        import csv

        from vmp_lightning.loggers import run_directory

        several_loaders = predictions and isinstance(predictions[0], list)
        batches = [b for loader in predictions for b in loader] if several_loaders else predictions
        if not batches:
            return
        logits = torch.cat([b["logits"] for b in batches])
        record = {
            "video_id": [v for b in batches for v in b["video_id"]],
            "view": torch.cat([b["view"] for b in batches]),
            "label": torch.cat([b["label"] for b in batches]),
            "logits": logits,
        }
        suffix = f"_rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        folder = run_directory(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        run = RunFolder(folder)
        with atomic_write(run.clip_predictions(suffix, "pt")) as partial:
            torch.save(record, partial)
        with atomic_write(run.clip_predictions(suffix)) as partial, partial.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video_id", "view", "label", *(f"logit_{k}" for k in range(logits.shape[1]))])
            columns = (record["video_id"], record["view"].tolist(), record["label"].tolist(), logits.tolist())
            rows = zip(*columns, strict=True)
            for video_id, view, label, row in rows:
                writer.writerow([video_id, view, label, *(f"{v:.6g}" for v in row)])
        rank_zero_info(f"Predictions written to {run.clip_predictions(suffix)}")


class PromptMedia(L.Callback):
    """Every ``every_n_epochs`` epochs and at the last, logs to W&B what each prompt layer makes of one fixed clip
    (of the validation split, or the test split when the run has no validation: the paper's protocol): frames, D,
    attention, prompts over ``max_steps`` steps, and the current PN curve, as small images. Brought by the model (on
    in every run with prompt layers and a W&B logger); no-op otherwise."""

    def __init__(self, every_n_epochs: int = 5, max_steps: int = 8, clip_index: int = 0) -> None:
        self.every_n_epochs, self.max_steps, self.clip_index = every_n_epochs, max_steps, clip_index

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning.pytorch.loggers import WandbLogger

        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        layers = dict(getattr(pl_module.model, "prompts", {}).items())
        if not trainer.is_global_zero or not loggers or not layers:
            return
        epoch, last = (
            trainer.current_epoch,
            trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs,
        )
        if (epoch + 1) % self.every_n_epochs and not last:
            return
        from vmp_lightning.figures import figure_array, pn_curve_figure, prompt_grid_figure, trace_prompt

        split = "val" if getattr(trainer.datamodule, "records", {}).get("val") else "test"
        item = trainer.datamodule.dataset(split)[self.clip_index]  # uint8: each layer normalises it as the model does
        images, captions = [], []
        for site, layer in layers.items():
            trace = trace_prompt(layer, item["video"])
            title = f"{item.get('video_id', '')} ({site}), epoch {epoch}"
            images.append(figure_array(prompt_grid_figure(trace, title, self.max_steps)))
            captions.append(site)
        curves = figure_array(pn_curve_figure({site: layer.pn for site, layer in layers.items()}))
        for logger in loggers:
            logger.log_image("prompt/maps", images, step=trainer.global_step, caption=captions)
            logger.log_image("prompt/pn_curve", [curves], step=trainer.global_step)
