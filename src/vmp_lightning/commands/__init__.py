"""The `vmp-lightning` entry point and its command table: LightningCLI's ``fit | validate | test | predict`` and the
project's own commands, one stack (jsonargparse) for all. The top of the package: nothing in it imports this.

Only the chosen command's module is imported, so ``--help`` and the light commands start without torch or
Lightning (`benchmarks/startup.py` measures it).
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from importlib import import_module

from vmp_lightning.errors import UserError


@dataclass(frozen=True)
class Command:
    """Where a command lives (``module:function``, which takes the arguments after the command's name) and its
    line in ``vmp-lightning --help``."""

    target: str
    summary: str
    group: str


LIGHTNING = "vmp_lightning.cli:run"
#: group -> (command, where it lives, its line in --help), in the order --help lists them
GROUPS = {
    "train and evaluate": [
        ("fit", LIGHTNING, "train a model (--test_after_fit: then test its best checkpoint)"),
        ("validate", LIGHTNING, "validate a checkpoint"),
        ("test", LIGHTNING, "test a checkpoint (writes test_predictions.csv into its run)"),
        ("predict", LIGHTNING, "write the logits of every test view (predictions.csv)"),
        ("demo", "demo:main", "baseline vs VMPs on synthetic motion videos"),
    ],
    "the paper": [
        ("reproduce", "experiments:reproduce", "fit and test every run of a manifest, then its table"),
        ("table", "experiments:table", "a manifest's table beside the paper's"),
        ("sweep", "experiments:sweep", "run a W&B sweep file offline"),
        ("download", "experiments:download", "fetch and verify the pretrained checkpoints a manifest names"),
    ],
    "data": [
        ("prepare", "data:prepare", "cut a dataset's clips, write its lists"),
        ("check-videos", "data:check_videos", "decode every video of a dataset once, list the bad ones"),
    ],
    "what the layer learned": [
        ("visualize", "analysis:visualize", "frames, differences, attention maps, prompts, PN curve of a clip"),
        ("pn-compare", "analysis:pn_compare", "one frame pair through the paper's PN functions"),
        ("weight-similarity", "analysis:weight_similarity", "per-layer cosine and change between checkpoints"),
        ("per-class", "analysis:per_class", "per-class accuracy of two prediction dumps, changed confusions"),
        ("compare-runs", "analysis:compare_runs", "accuracy against a swept setting, one point per run"),
    ],
}
COMMANDS: dict[str, Command] = {
    name: Command(target if target == LIGHTNING else f"vmp_lightning.commands.{target}", summary, group)
    for group, commands in GROUPS.items()
    for name, target, summary in commands
}

USAGE = "usage: vmp-lightning COMMAND [--config FILE] [--print_config] [OPTIONS]   (vmp-lightning COMMAND --help)"


def overview() -> str:
    """``vmp-lightning --help``: every command with one line, by group."""
    lines = [
        USAGE,
        "",
        "Video Motion Prompts on PyTorch Lightning. fit, validate, test, predict and demo start from the embedded",
        "default config (synthetic motion videos, a tiny 3D CNN); --config files and --section.key flags override it.",
    ]
    for group in dict.fromkeys(command.group for command in COMMANDS.values()):
        lines += ["", f"{group}:"]
        lines += [f"  {name:<18}{c.summary}" for name, c in COMMANDS.items() if c.group == group]
    return "\n".join(lines)


def unknown_command(name: str) -> UserError:
    from vmp_lightning.parsing import closest

    match = closest(name, COMMANDS)
    hint = f"; did you mean '{match}'?" if match else " (vmp-lightning --help lists them)"
    return UserError(f"unknown command '{name}'{hint}")


def run(argv: list[str], from_sys_argv: bool = False) -> None:
    """Run ``vmp-lightning <argv>``; ``from_sys_argv``: argv is this process's own (LightningCLI then reads it)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(overview())
        if not argv:
            sys.exit(2)
        return
    command = COMMANDS.get(argv[0])
    if command is None:
        raise unknown_command(argv[0])
    module, function = command.target.split(":")
    target = getattr(import_module(module), function)
    if command.target == LIGHTNING:
        target(None if from_sys_argv else argv)
    else:
        target(argv[1:])


#: Third-party chatter that says nothing about a user's run (message patterns, matched from the start): each line
#: is about the libraries' own versions or products. ``VMP_LIGHTNING_ALL_WARNINGS=1`` shows them again.
THIRD_PARTY_WARNINGS = (
    r".*`torch\.jit\.script` is deprecated",  # fvcore (pytorchvideo's models) at import
    r".*isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning 2.6 on torch >= 2.10
    r"Precision .* is not supported by the model summary",  # Lightning's size estimate
    r"The `srun` command is available on your system but is not used",  # any machine with SLURM's client
    r".*saved_variables",  # X3D's Swish under torch >= 2.x
)
THIRD_PARTY_INFO = ("💡 Tip: For seamless cloud logging",)  # Lightning's advertisement at every Trainer


def quiet_third_party() -> None:
    """Filter `THIRD_PARTY_WARNINGS` and `THIRD_PARTY_INFO` (DataLoader workers inherit the filters); the
    project's own warnings and those about the run stay."""
    import logging
    import os
    import warnings

    if os.environ.get("VMP_LIGHTNING_ALL_WARNINGS") == "1":
        return
    for pattern in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith(THIRD_PARTY_INFO)
    )


def main(args: list[str] | None = None) -> None:
    quiet_third_party()
    try:
        run(sys.argv[1:] if args is None else list(args), from_sys_argv=args is None)
    except UserError as error:
        # Bad data, files, settings or training are the user's to fix: what is wrong, without a traceback.
        sys.stderr.write(f"vmp-lightning: error: {error}\n")
        sys.exit(2)
    except SystemExit as stop:
        exceptions = sys.modules.get("lightning.pytorch.utilities.exceptions")
        if exceptions is not None and isinstance(stop, exceptions.SIGTERMException):
            # stopped by a signal: LatestCheckpoint saved and said where; 128 + the signal, not a success
            sys.exit(stop.code if isinstance(stop.code, int) and stop.code > 128 else 128 + signal.SIGTERM)
        raise


if __name__ == "__main__":
    main()
