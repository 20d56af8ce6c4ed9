"""One command-line stack: every project command parses with jsonargparse, as LightningCLI does for fit / validate /
test / predict, so each takes ``--config FILE`` (a YAML of its settings) and ``--print_config`` (its resolved config),
refuses abbreviated flags, and answers a mistyped flag with the closest one."""

from __future__ import annotations

import difflib
import inspect
import os
import re
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

from vmp_lightning.internals import option_strings


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice a mistyped or shortened ``word`` most likely meant: the shortest one it begins, else the closest
    by spelling, else None."""
    choices = list(choices)
    extended = sorted((c for c in choices if c.startswith(word)), key=len)
    if extended:
        return extended[0]
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def flag_suggestion(message: str, options: Iterable[str]) -> str:
    """``; did you mean --x?`` for the first unknown flag an error message names (empty when none is close): an
    unrecognised ``--flag``, or a setting a class does not take (``Option 'lamda_v' is not accepted``)."""
    options = [o for o in options if o.startswith("--")]
    for flag in re.findall(r"(--[\w.\-]+)", message):
        match = None if flag in options else closest(flag, options)
        if match:
            return f"; did you mean {match}?"
    for class_path, option in re.findall(r"class_path '([\w.]+)':\s+Option '(\w+)' is not accepted", message):
        module, _, name = class_path.rpartition(".")
        try:
            accepted = inspect.signature(getattr(import_module(module), name)).parameters
        except (ImportError, AttributeError, TypeError, ValueError):
            continue
        match = closest(option, [p for p in accepted if p != "self"])
        if match:
            return f"\n(did you mean '{match}'?)"
    return ""


def with_flag_suggestions(parser: ArgumentParser) -> ArgumentParser:
    """Make ``parser`` add a suggestion to its errors (LightningCLI's parsers too: they are made elsewhere)."""
    error = parser.error

    def error_with_suggestion(message: str, ex: Exception | None = None):
        return error(message + flag_suggestion(message, option_strings(parser)), ex)

    parser.error = error_with_suggestion  # type: ignore[method-assign]
    return parser


def command_parser(name: str, description: str | None) -> ArgumentParser:
    """The parser of ``vmp-lightning <name>``: ``--config`` / ``--print_config``, no abbreviations, suggestions."""
    parser = ArgumentParser(prog=f"vmp-lightning {name}", description=description, allow_abbrev=False)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of this command's settings")
    return with_flag_suggestions(parser)


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """A command's own arguments and those after ``--``, which it passes on to ``fit`` / the CLI."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


ENVIRONMENT_REFERENCE = re.compile(r"\$(?:\{([A-Z][A-Z0-9_]*)\}|([A-Z][A-Z0-9_]*))")


def expand_environment(args: list[str]) -> list[str]:
    """``$NAME`` / ``${NAME}`` (upper-case names) in command-line values replaced by the environment's value: a W&B
    agent starts its command without a shell, so a sweep file's ``--data.init_args.root=$DATA_ROOT/finegym`` is
    expanded here. An unset variable is an error naming it and the flag."""
    from vmp_lightning.errors import ConfigError

    def value(match: re.Match, arg: str) -> str:
        name = match.group(1) or match.group(2)
        if name not in os.environ:
            raise ConfigError(f"{arg.split('=')[0]}: the environment variable {name} is not set")
        return os.environ[name]

    return [ENVIRONMENT_REFERENCE.sub(lambda m, a=arg: value(m, a), arg) for arg in args]


def read_yaml(source: str | Path, where: str | None = None) -> Any:
    """A YAML file (or YAML text, named ``where``) of plain values; a tag that would build Python objects
    (``!!python/...``) or a syntax error is a `ConfigError` naming the file and the line."""
    import yaml

    from vmp_lightning.errors import ConfigError

    text = source if where is not None else Path(source).read_text()
    name = where if where is not None else str(source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{name}{line}: {problem} (configs and manifests hold plain values)") from None
