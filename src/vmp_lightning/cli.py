"""LightningCLI for `vmp-lightning fit | validate | test | predict` (the project's own commands: commands.py)."""

from __future__ import annotations

from importlib.resources import files

import lightning as L
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from vmp_lightning.data.datamodule import VideoDataModule
from vmp_lightning.loggers import run_directory
from vmp_lightning.module import VideoClassifier, restoring_from_checkpoint
from vmp_lightning.normalization import Normalization
from vmp_lightning.prompt import MotionPrompt

DEFAULT_CONFIG = str(files("vmp_lightning") / "configs" / "default.yaml")
DESCRIPTION = (
    "Video Motion Prompts on PyTorch Lightning. Every subcommand starts from the embedded default config "
    f"({DEFAULT_CONFIG}: synthetic motion videos, tiny 3D CNN); --config files and flags override it. "
    "Project commands: `vmp-lightning demo` (baseline vs VMP on synthetic motion videos), "
    "`vmp-lightning prepare hmdb51|finegym|mpii-cooking2` (cut clips), "
    "`vmp-lightning check-videos --config ...` (decode every video of a dataset once)."
)


def extra_frames(vmp: bool) -> int:
    """Extra frames the data must sample for the layer in front of the backbone."""
    return MotionPrompt.extra_frames if vmp else 0


class RunConfigSaver(SaveConfigCallback):
    """Saves the full config as ``config.yaml`` in the run's own folder, beside its checkpoints, so runs that
    share a ``save_dir`` never overwrite each other's config."""

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        folder = run_directory(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.config_filename
        self.parser.save(self.config, str(path), skip_unset=False, overwrite=True, multifile=self.multifile)
        rank_zero_info(f"Config saved to {path}")


class VMPLightningCLI(LightningCLI):
    """One switch for VMPs: ``model.vmp`` also makes the data module sample one frame more. The data module owns
    the number of classes and the normalisation; the model is told both (linked arguments)."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("model.init_args.vmp", "data.init_args.extra_frames", compute_fn=extra_frames)
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.link_arguments(  # as a plain dict, so saved hyper-parameters stay plain YAML
            "data.normalization",
            "model.init_args.normalization",
            apply_on="instantiate",
            compute_fn=Normalization.as_dict,
        )

    def instantiate_classes(self) -> None:
        """With ``--ckpt_path`` the model's weights come from that checkpoint, not from ``init_checkpoint``."""
        subcommand = self.config.get("subcommand")
        if subcommand and self.config[subcommand].get("ckpt_path"):
            with restoring_from_checkpoint():
                super().instantiate_classes()
        else:
            super().instantiate_classes()


def build_cli(args: list[str] | None = None, run: bool = True) -> VMPLightningCLI:
    """The CLI object (``run=False`` parses and instantiates without running a subcommand)."""
    default_files = {"default_config_files": [DEFAULT_CONFIG]}
    parser_kwargs = {name: default_files for name in ("fit", "validate", "test", "predict")} if run else default_files
    return VMPLightningCLI(
        VideoClassifier,
        VideoDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_callback=RunConfigSaver,
        save_config_kwargs={"save_to_log_dir": False},
        parser_kwargs={**parser_kwargs, "description": DESCRIPTION},
        args=args,
        run=run,
    )
