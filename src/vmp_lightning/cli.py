"""LightningCLI for `vmp-lightning fit | validate | test | predict` (the command table: `vmp_lightning.commands`)."""

from __future__ import annotations

import os
import sys
from importlib import import_module
from pathlib import Path

import lightning as L
import yaml
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from vmp_lightning.backbones.checkpoints import check_checkpoint_file
from vmp_lightning.callbacks import LatestCheckpoint, PredictionWriter, tested_checkpoint
from vmp_lightning.classifier import VideoClassifier, restoring_from_checkpoint
from vmp_lightning.config_sources import DEMO_CONFIG, LINKED, command_arguments
from vmp_lightning.data.datamodule import VideoDataModule
from vmp_lightning.errors import UserError
from vmp_lightning.loggers import AutoWandbLogger, finish_wandb_runs, run_directory, write_run_metrics
from vmp_lightning.migration import checkpoint_model_config
from vmp_lightning.model import frames_per_clip
from vmp_lightning.optim import COSINE, accumulation, run_epochs
from vmp_lightning.parsing import with_flag_suggestions
from vmp_lightning.runs import RUN_ID_VARIABLE, RunFolder, folder_name, new_run_id

DESCRIPTION = (
    f"Starts from the demo's config ({DEMO_CONFIG}: synthetic motion videos, tiny 3D CNN) for every section whose "
    "class you do not name (data, model, model.backbone, model.optimizer, model.lr_scheduler: a named class starts "
    "from its own defaults); --config files and --section.key flags override it. `vmp-lightning --help` lists "
    "every command."
)


class RunConfigSaver(SaveConfigCallback):
    """A fit saves its full config as ``config.yaml`` in the run's own folder, beside its checkpoints, so runs that
    share a ``save_dir`` never overwrite each other's config; every logger gets the whole config (data, trainer,
    seed, model) as hyper-parameters, and a W&B run the file itself. ``test``, ``validate`` and ``predict`` of a
    run's checkpoint write ``config_<stage>.yaml`` beside it and leave the fit's file and W&B config alone (the
    resume command reads ``config.yaml``); outside a run folder they write nothing."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        folder = run_directory(trainer)
        stage = str(getattr(stage, "value", stage))
        fit = stage == "fit"
        if not fit and not RunFolder(folder).config.is_file():
            return
        folder.mkdir(parents=True, exist_ok=True)
        path = RunFolder(folder).stage_config(stage)
        self.parser.save(self.config, str(path), skip_unset=False, overwrite=True, multifile=self.multifile)
        rank_zero_info(f"Config saved to {path}")
        whole = yaml.safe_load(path.read_text())  # plain YAML values, as saved (no parser internals)
        for logger in trainer.loggers:
            if fit:
                logger.log_hyperparams({"config": whole})
            if isinstance(logger, AutoWandbLogger):
                logger.upload(path)


#: ``--ckpt_path`` values that Lightning resolves itself, not file paths.
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


def place_run(config, subcommand: str = "fit") -> Path | None:
    """Give a ``fit`` its own folder (checkpoints, config, the W&B run id) whatever the logger: a new run gets a
    new one (``--run_id`` names it), ``--ckpt_path <run>/checkpoints/last.ckpt`` continues that run's folder and
    W&B run, and a fit whose id names a run that has a checkpoint (a requeued SLURM job's, a harness run's)
    continues it from there. ``test``, ``validate`` and ``predict`` of a run's checkpoint write into that run's
    folder (and W&B run); without a logger, into ``trainer.default_root_dir`` when it is set. The names and the id
    rules are `runs`'; this reads and sets the parsed config."""
    trainer = config.trainer
    ckpt_path = config.get("ckpt_path")
    resumed = RunFolder.of_checkpoint(ckpt_path) if ckpt_path and ckpt_path not in LIGHTNING_CKPT_NAMES else None
    if subcommand != "fit" and resumed is None:
        return None
    logger = trainer.get("logger")
    init_args = logger.get("init_args") if hasattr(logger, "get") else None
    wandb = init_args is not None and "WandbLogger" in str(logger.get("class_path"))
    if logger in (None, False):
        if subcommand != "fit" and trainer.get("default_root_dir"):
            return None  # evaluated into the folder asked for
        runs_root = Path(trainer.get("default_root_dir") or ".") / "runs"
    elif wandb:
        runs_root = Path(init_args.get("save_dir") or ".") / str(init_args.get("project") or "lightning_logs")
    else:
        runs_root = Path(trainer.get("default_root_dir") or ".")
    run_id = resumed.run_id if resumed else folder_name(config.get("run_id") or new_run_id(runs_root), "--run_id")
    os.environ[RUN_ID_VARIABLE] = run_id
    if not wandb and logger not in (None, False):  # another logger: it names its own folder
        if init_args is not None and "version" in init_args and init_args.version is None:
            init_args.version = run_id
        return None
    # One spelling, absolute: the checkpoint callbacks record their folder and restore their best only into the
    # folder spelled as saved.
    run = (resumed.path if resumed else runs_root / run_id).resolve()
    if wandb:  # the run's W&B project and folder, wherever this command's defaults point
        init_args.id, init_args.resume = run_id, "allow"
        init_args.save_dir, init_args.project = str(run.parents[1]), run.parent.name
    trainer.default_root_dir = str(run)
    latest = RunFolder(run).latest_state(rank_zero_info) if subcommand == "fit" and not ckpt_path else None
    if latest is not None:
        config.ckpt_path = str(latest)
        rank_zero_info(f"run {run_id} has a checkpoint: continuing it from {latest}")
    return run


def cosine_follows_run_length(config) -> None:
    """The cosine schedule spans the run's epochs (`optim.follow_run_length`), set in the config itself so that
    ``config.yaml`` and the logged hyper-parameters hold the T_max the run uses."""
    scheduler = (config.get("model") or {}).get("init_args", {}).get("lr_scheduler")
    epochs = run_epochs(config.trainer.get("max_epochs"), config.trainer.get("max_steps", -1))
    cosine = hasattr(scheduler, "get") and scheduler.get("class_path") == COSINE
    if cosine and epochs:
        scheduler.init_args.T_max = epochs


class VMPLightningCLI(LightningCLI):
    """The model owns the clip contract (T, the prompt's extra frame, the normalisation): the data module is told
    ``frames_per_clip`` through one link, so ``model.vmp`` is one switch. The data owns the number of classes; the
    model is told it (the other link)."""

    def init_parser(self, **kwargs) -> LightningArgumentParser:
        """No abbreviated flags (``--trainer.max_ep`` is not ``max_epochs``); a mistyped one gets a suggestion."""
        return with_flag_suggestions(super().init_parser(**{"allow_abbrev": False, **kwargs}))

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Lightning's, without its warning that ``args`` and ``sys.argv`` are both given: ``build_cli`` hands over
        this process's own arguments, completed by `config_sources.command_arguments`."""
        self.config = parser.parse_args(args) if isinstance(args, list) else parser.parse_object(args)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="fit only: then test the best checkpoint in the same run (same folder, same W&B run)",
        )
        parser.add_argument(
            "--run_id",
            type=str | None,
            default=None,
            help="fit only: the run's id, its folder's name and W&B id (default: a new one; a run of that id "
            "with a checkpoint is continued)",
        )
        parser.add_argument(
            "--global_batch_size",
            type=int | None,
            default=None,
            help="the batch the recipe's learning rate is tuned for: accumulation = this / (processes x data batch), "
            "derived once the devices are known, so 1, 2, 4 or 8 devices train the same recipe",
        )
        parser.link_arguments(
            ("model.init_args.num_frames", "model.init_args.vmp"), "data.init_args.frames_per_clip", frames_per_clip
        )
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")

    def _parse_ckpt_path(self) -> None:
        """Lightning's: the model's settings come from the checkpoint, here brought up to date first (checkpoints
        of earlier versions, `vmp_lightning.migration`). The file is checked first (a clear error instead of the
        unpickler's), and the settings it replaces are said."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or ckpt_path in LIGHTNING_CKPT_NAMES:
            return super()._parse_ckpt_path()
        check_checkpoint_file(ckpt_path)
        before = model_settings(self.config[subcommand])
        model = checkpoint_model_config(ckpt_path)
        if model:
            self.config = self.parser.parse_object({subcommand: {"model": model}}, self.config)
        after = model_settings(self.config[subcommand])
        linked = {key.split(".")[-1] for key in LINKED if key.startswith("model.")}  # set at instantiation
        replaced = [
            f"model.{key}: {before.get(key)!r} -> {value!r}"
            for key, value in after.items()
            if before.get(key) != value and key not in linked
        ]
        if replaced:
            rank_zero_warn(
                f"--ckpt_path {ckpt_path} replaces these model settings with the checkpoint's: " + "; ".join(replaced)
            )

    def instantiate_trainer(self, **kwargs) -> L.Trainer:
        """The configured trainer, plus `LatestCheckpoint` when it checkpoints (``last.ckpt`` = the latest state;
        a callback of the module could not add it: Lightning would let it replace the configured ModelCheckpoint).
        Without validation (``trainer.limit_val_batches 0``) nothing can be monitored: the monitored checkpoint
        callbacks go, and the run is tested on its last checkpoint."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if SLURMEnvironment.detect() and not config.trainer.get("plugins"):
            # One requeue mechanism: `Preemption` stops at a saved step and the job requeues itself (submitit, or
            # the template's trap); Lightning's own SIGUSR1 requeue would save mid-batch (hpc_ckpt) beside it.
            kwargs.setdefault("plugins", [SLURMEnvironment(auto_requeue=False)])
        trainer = super().instantiate_trainer(**kwargs)
        if trainer.checkpoint_callback is not None and not any(
            isinstance(c, LatestCheckpoint) for c in trainer.callbacks
        ):
            trainer.callbacks.append(LatestCheckpoint())
        global_batch = (self.config[self.subcommand] if self.subcommand else self.config).get("global_batch_size")
        if global_batch:
            trainer.accumulate_grad_batches = accumulation(global_batch, trainer, self.datamodule)
        if trainer.limit_val_batches == 0:
            monitored = [c for c in trainer.checkpoint_callbacks if c.monitor and not isinstance(c, LatestCheckpoint)]
            trainer.callbacks = [c for c in trainer.callbacks if c not in monitored]
            if monitored:
                rank_zero_info("no validation (limit_val_batches 0): the last checkpoint is tested, none is selected")
        if self.subcommand == "predict" and not any(isinstance(c, PredictionWriter) for c in trainer.callbacks):
            trainer.callbacks.append(PredictionWriter())
        return trainer

    def before_instantiate_classes(self) -> None:
        if self.subcommand:
            place_run(self.config[self.subcommand], self.subcommand)
            cosine_follows_run_length(self.config[self.subcommand])

    def after_fit(self) -> None:
        """With ``--test_after_fit``: test the best checkpoint (``last.ckpt`` when nothing is monitored) in the same
        run; then write the run's final metrics beside its checkpoints (``metrics.json``)."""
        trainer = self.trainer
        if trainer.interrupted or trainer.fast_dev_run:
            return
        val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        test: dict[str, float] = {}
        tested = tested_checkpoint(trainer)
        if self.config["fit"].get("test_after_fit"):
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path=tested or None)
            test = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        write_run_metrics(trainer, val, test, tested)

    def instantiate_classes(self) -> None:
        """With ``--ckpt_path`` the model's weights come from that checkpoint, not from ``init_checkpoint``. A bad
        setting a class refuses (`UserError`) comes out as itself: jsonargparse wraps it in a long ValueError."""
        subcommand = self.config.get("subcommand")
        try:
            if subcommand and self.config[subcommand].get("ckpt_path"):
                with restoring_from_checkpoint():
                    super().instantiate_classes()
            else:
                super().instantiate_classes()
        except ValueError as error:
            cause = _user_error_in(error)
            if cause is None:
                raise
            raise cause from None


def _user_error_in(error: BaseException) -> UserError | None:
    """The `UserError` an exception was raised from or while handling, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def model_settings(config) -> dict:
    """The model's plain settings in a subcommand's config (``init_args``, nested classes as their class path)."""
    model = config.get("model")
    init_args = model.get("init_args") if hasattr(model, "get") else None
    if init_args is None:
        return {}
    flat = init_args.as_dict() if hasattr(init_args, "as_dict") else dict(init_args)
    return {k: (v.get("class_path", v) if isinstance(v, dict) else v) for k, v in flat.items()}


def build_cli(args: list[str] | None = None, run: bool = True) -> VMPLightningCLI:
    """The CLI object (``run=False`` parses and instantiates without running a subcommand); ``args`` (None: this
    process's own) start from the demo's settings where they name no class of their own (`config_sources`)."""

    def short_usage(name: str) -> dict:  # an error then shows one usage line, not all of them
        return {"usage": f"vmp-lightning {name} [--config FILE ...] [--<section>.<key> VALUE ...]  (--help lists them)"}

    subcommands = ("fit", "validate", "test", "predict")
    parser_kwargs = {name: short_usage(name) for name in subcommands} if run else {}
    cli = VMPLightningCLI(
        VideoClassifier,
        VideoDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"save_to_log_dir": False},
        parser_kwargs={**parser_kwargs, "prog": "vmp-lightning", "description": DESCRIPTION},
        args=command_arguments(sys.argv[1:] if args is None else args),
        run=run,
    )
    if run:  # the command's W&B run ends with it: the next command in this process starts its own
        finish_wandb_runs(cli.trainer)
    return cli


class _DataOnlyCLI(VMPLightningCLI):
    """Parses a command's full settings (model included, so the links hold) and builds only its data module."""

    def instantiate_classes(self) -> None:
        data = self.config["data"]
        module, _, name = data.class_path.rpartition(".")
        self.datamodule = getattr(import_module(module), name)(**data.init_args.as_dict())
        self.model = self.trainer = None


def build_datamodule(args: list[str]) -> L.LightningDataModule:
    """The data module ``fit`` would build from ``args`` (``frames_per_clip`` from the model's settings), without
    a model or a Trainer: what `check-videos` and the analysis tools read."""
    return _DataOnlyCLI(
        VideoClassifier,
        VideoDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=None,
        auto_configure_optimizers=False,
        parser_kwargs={"prog": "vmp-lightning", "description": DESCRIPTION},
        args=command_arguments(args),
        run=False,
    ).datamodule


def run(args: list[str] | None) -> None:
    """`vmp-lightning fit | validate | test | predict ...` (None: this process's own arguments)."""
    build_cli(args)
