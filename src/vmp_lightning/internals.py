"""The private internals of other libraries that the project cannot avoid, in one place.

Each is used for want of a public API, names the version it was checked against (`CHECKED_AGAINST`), and has a test
in ``tests/test_internals.py`` that fails loudly, naming it, when an upgrade changes it. Everything else goes through
public APIs; a new use of a ``._name`` of a third-party object belongs here, with its test.

| internal | library | what for |
|---|---|---|
| ``hparams_mixin._given_hyperparameters`` | Lightning | a module built by LightningCLI saves its whole config |
| ``trainer._logger_connector.should_update_logs`` | Lightning | values logged only on the steps that are written |
| ``LightningCLI._parse_ckpt_path`` (overridden) | Lightning | a checkpoint's model settings, migrated first |
| ``WandbLogger._experiment``, ``._wandb_init`` | Lightning | whether a W&B run was started; ``anonymous`` not passed |
| ``partial(call, instantiator, Class, **init_args)`` | jsonargparse | the class and init args behind a ``class_path`` |
| ``ArgumentParser._option_string_actions`` | argparse | the flags a mistyped one is compared with |
| ``torch._foreach_norm``, ``torch._foreach_copy_`` | torch | one kernel for many tensors (the non-finite guard) |
| ``numpy._core.multiarray`` | numpy | the globals numpy 2 pickles name (Caffe2 checkpoints) |
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

#: The versions every internal below was checked against (the test suite checks them again on each install).
CHECKED_AGAINST = {"lightning": "2.6.6", "jsonargparse": "4.53.0", "torch": "2.14.1", "numpy": "2.4.6"}


def built_by_lightning_cli() -> bool:
    """True while LightningCLI instantiates a module (it then hands the module its whole config as
    hyper-parameters, through a context variable)."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    return _given_hyperparameters.get() is not None


def logs_written_this_step(trainer: Any) -> bool:
    """Whether the loggers write the current training step (Lightning's own rule: ``log_every_n_steps``, the last
    step); True when the trainer does not say."""
    connector = getattr(trainer, "_logger_connector", None)
    return connector is None or bool(connector.should_update_logs)


def wandb_run_started(logger: Any) -> bool:
    """Whether a `WandbLogger` has started its W&B run (``logger.experiment`` would start one)."""
    return getattr(logger, "_experiment", None) is not None


def drop_wandb_init_keyword(logger: Any, key: str) -> None:
    """Leave ``key`` out of what a `WandbLogger` hands ``wandb.init`` (Lightning 2.6 always passes
    ``anonymous=None``, which wandb >= 0.19 warns about at every start)."""
    logger._wandb_init.pop(key, None)


def partial_class_and_keywords(factory: Callable) -> tuple[Callable, dict]:
    """The class and init args behind a callable that jsonargparse made from a ``class_path``
    (``partial(call, instantiator, Class, **init_args)``); any other callable comes back as itself."""
    if isinstance(factory, functools.partial):
        classes = [a for a in factory.args if isinstance(a, type)]
        return (classes[-1] if classes else factory.func), dict(factory.keywords)
    return factory, {}


def option_strings(parser: Any) -> list[str]:
    """Every flag an argparse (or jsonargparse) parser takes."""
    return list(parser._option_string_actions)


def foreach_norm(tensors: list) -> list:
    """The 2-norm of each tensor, in one kernel launch per device and dtype."""
    import torch

    return list(torch._foreach_norm(tensors))


def foreach_copy(destinations: list, sources: list) -> None:
    """``d.copy_(s)`` for each pair, in one kernel launch per device and dtype."""
    import torch

    torch._foreach_copy_(destinations, sources)


def numpy_multiarray() -> Any:
    """numpy's ``multiarray`` module under the name numpy 2 pickles give it (``numpy._core``; numpy 1:
    ``numpy.core``)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    return multiarray
