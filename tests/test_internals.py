"""Each library internal of `vmp_lightning.internals` against the installed library: an upgrade that changes one
fails here, naming it, instead of silently changing a run."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

import lightning as L
import torch
from jsonargparse import ArgumentParser
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import WandbLogger

from helpers import tiny_classifier
from vmp_lightning import internals


def test_the_versions_checked_against_are_named():
    for package, checked in internals.CHECKED_AGAINST.items():
        installed = version(package)
        assert installed.split("+")[0].split(".")[:1] == checked.split(".")[:1], (package, installed, checked)


def test_lightning_cli_hands_a_module_its_config_through_the_context_variable(tmp_path):
    seen = []

    class Probe(L.LightningModule):
        def __init__(self, width: int = 3) -> None:
            super().__init__()
            seen.append(internals.built_by_lightning_cli())

    LightningCLI(Probe, run=False, args=["--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"])
    Probe()
    assert seen == [True, False], "hparams_mixin._given_hyperparameters changed"


def test_the_logger_connector_says_which_steps_are_written(tmp_path):
    written = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, *args) -> None:
            written.append(internals.logs_written_this_step(trainer))

    model = tiny_classifier(num_frames=2)
    clip = torch.randint(0, 255, (2, 3, 2, 8, 8), dtype=torch.uint8)
    data = [{"video": clip, "label": torch.tensor([1, 2])}] * 4
    trainer = L.Trainer(
        max_steps=4, log_every_n_steps=2, logger=False, callbacks=[Probe()], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    assert written == [False, True, False, True], "trainer._logger_connector.should_update_logs changed"


def test_lightning_cli_still_reads_the_checkpoint_settings_where_we_override_it():
    assert callable(getattr(LightningCLI, "_parse_ckpt_path", None)), "LightningCLI._parse_ckpt_path is gone"


def test_the_wandb_logger_keeps_its_run_and_init_keywords(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert not internals.wandb_run_started(logger)
    assert "anonymous" in logger._wandb_init, "WandbLogger no longer passes anonymous: drop_wandb_init_keyword"
    internals.drop_wandb_init_keyword(logger, "anonymous")
    assert "anonymous" not in logger._wandb_init


def test_jsonargparse_builds_a_class_path_as_a_partial_of_the_class():
    """What the CLI hands `VideoClassifier` as ``backbone`` (a ``Callable[[int], nn.Module]`` given by class path)."""
    from vmp_lightning.backbones import TinyVideoCNN

    parser = ArgumentParser()
    parser.add_argument("--backbone", type=Callable[[int], torch.nn.Module])
    config = parser.parse_args(["--backbone=vmp_lightning.backbones.TinyVideoCNN", "--backbone.width=6"])
    factory = parser.instantiate_classes(config).backbone
    target, keywords = internals.partial_class_and_keywords(factory)
    assert target is TinyVideoCNN and keywords["width"] == 6, "jsonargparse's partial for a class_path changed"
    assert isinstance(factory(3), TinyVideoCNN)


def test_argparse_lists_the_flags_a_parser_takes():
    parser = ArgumentParser()
    parser.add_argument("--alpha")
    assert "--alpha" in internals.option_strings(parser)


def test_foreach_kernels_match_their_loops():
    tensors = [torch.randn(5), torch.randn(3, 2)]
    assert torch.allclose(torch.stack(internals.foreach_norm(tensors)), torch.stack([t.norm() for t in tensors]))
    destinations = [torch.zeros(5), torch.zeros(3, 2)]
    internals.foreach_copy(destinations, tensors)
    assert all(torch.equal(a, b) for a, b in zip(destinations, tensors, strict=True))


def test_numpy_pickles_name_the_multiarray_module_we_allow():
    import pickle

    import numpy as np

    data = pickle.dumps(np.arange(3), protocol=2)
    assert b"multiarray" in data and hasattr(internals.numpy_multiarray(), "_reconstruct")
