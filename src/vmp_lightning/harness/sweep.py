"""`vmp-lightning sweep <sweep.yaml>`: a W&B sweep file run fully offline.

The file is W&B's sweep format (``method``, ``metric``, ``parameters``, ``command``), so ``wandb sweep`` +
``wandb agent`` run it unchanged on a W&B server. Offline, ``grid`` and ``random`` draw the trials as W&B would
(every combination; independent draws from each parameter's distribution) and ``bayes`` asks Optuna's TPE sampler.
Each trial is the agent's own command line (``${args}`` expanded as the agent does) run as a normal fit in its own
folder; the metric is read from the trial's ``metrics.json`` (the last logged value, W&B's summary).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vmp_lightning.files import atomic_write
from vmp_lightning.harness.manifest import ManifestError
from vmp_lightning.harness.reproduce import InProcess, execute, identity, placement_flags, run_metrics
from vmp_lightning.lazy import import_optional
from vmp_lightning.parsing import read_yaml
from vmp_lightning.runs import folder_name

METHODS = ("grid", "random", "bayes")


def load_sweep(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"sweep file {path} not found")
    sweep = read_yaml(path) or {}
    for key in ("method", "parameters", "command"):
        if key not in sweep:
            raise ManifestError(f"{path}: a W&B sweep needs '{key}'")
    if sweep["method"] not in METHODS:
        raise ManifestError(f"{path}: method must be one of {METHODS}, got {sweep['method']!r}")
    if sweep["method"] != "grid" and "metric" not in sweep:
        raise ManifestError(f"{path}: method {sweep['method']} needs a metric (name, goal)")
    for name, spec in sweep["parameters"].items():
        if not isinstance(spec, dict) or not ({"value", "values", "distribution"} & set(spec)):
            raise ManifestError(f"{path}: parameter {name} needs value, values or distribution")
        if sweep["method"] == "grid" and "value" not in spec and "values" not in spec:
            raise ManifestError(f"{path}: grid search needs values for {name}, not a distribution")
    return sweep


def _draw(spec: dict[str, Any], rng: random.Random) -> Any:
    """One draw from a W&B parameter spec (the distributions W&B's random search supports)."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec and spec.get("distribution", "categorical") == "categorical":
        return rng.choice(spec["values"])
    kind, low, high = spec["distribution"], spec.get("min"), spec.get("max")
    if kind == "uniform":
        return rng.uniform(low, high)
    if kind == "int_uniform":
        return rng.randint(low, high)
    if kind == "log_uniform_values":
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if kind == "log_uniform":  # W&B: min and max are natural logarithms
        return math.exp(rng.uniform(low, high))
    if kind == "normal":
        return rng.gauss(spec.get("mu", 0.0), spec.get("sigma", 1.0))
    if kind == "q_uniform":
        q = spec.get("q", 1.0)
        return round(rng.uniform(low, high) / q) * q
    raise ManifestError(f"distribution {kind!r} is not supported offline (use uniform, log_uniform_values, ...)")


def _suggest(trial: Any, name: str, spec: dict[str, Any]) -> Any:
    """The same parameter space for Optuna's sampler."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return trial.suggest_categorical(name, spec["values"])
    kind, low, high = spec["distribution"], spec.get("min"), spec.get("max")
    if kind == "uniform":
        return trial.suggest_float(name, low, high)
    if kind == "int_uniform":
        return trial.suggest_int(name, low, high)
    if kind == "log_uniform_values":
        return trial.suggest_float(name, low, high, log=True)
    if kind == "log_uniform":
        return trial.suggest_float(name, math.exp(low), math.exp(high), log=True)
    if kind == "q_uniform":
        return trial.suggest_float(name, low, high, step=spec.get("q", 1.0))
    raise ManifestError(f"distribution {kind!r} is not supported by the bayes method offline")


def grid(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(sweep["parameters"])
    choices = [spec.get("values", [spec.get("value")]) for spec in sweep["parameters"].values()]
    return [dict(zip(names, combination, strict=True)) for combination in itertools.product(*choices)]


def agent_command(sweep: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    """The command line a W&B agent builds: ``${args}`` -> ``--name=value`` per parameter (Python's str of the
    value, as the agent formats it), ``${args_no_hyphens}`` -> ``name=value``, ``${env}`` -> ``/usr/bin/env``,
    ``${interpreter}`` -> this Python, ``${program}`` -> the sweep's program, ``${args_json}`` -> one JSON."""
    expanded: list[str] = []
    for token in sweep["command"]:
        if token == "${args}":
            expanded.extend(f"--{k}={v}" for k, v in parameters.items())
        elif token == "${args_no_hyphens}":
            expanded.extend(f"{k}={v}" for k, v in parameters.items())
        elif token == "${args_json}":
            expanded.append(json.dumps(parameters))
        else:
            values = {"${env}": "/usr/bin/env", "${interpreter}": sys.executable, "${program}": sweep.get("program")}
            expanded.append(values.get(token, token))
    return expanded


def cli_arguments(command: list[str]) -> list[str]:
    """The ``vmp-lightning`` arguments of an agent command (what follows the console script)."""
    for index, token in enumerate(command):
        if Path(token).name == "vmp-lightning":
            return command[index + 1 :]
        if token == "-m" and index + 1 < len(command) and command[index + 1] == "vmp_lightning":
            return command[index + 2 :]
    raise ManifestError(f"the sweep's command does not call vmp-lightning: {command}")


def _trials(sweep: dict[str, Any], max_trials: int | None, seed: int) -> Iterator[tuple[dict[str, Any], Any]]:
    """(parameters, optuna trial or None) per trial; the caller reports each result before the next is asked."""
    if sweep["method"] == "grid":
        for parameters in grid(sweep)[:max_trials]:
            yield parameters, None
        return
    count = max_trials or sweep.get("run_cap")
    if not count:
        raise ManifestError(f"method {sweep['method']} needs --max-trials (or run_cap in the file)")
    if sweep["method"] == "random":
        rng = random.Random(seed)
        for _ in range(count):
            yield {name: _draw(spec, rng) for name, spec in sweep["parameters"].items()}, None
        return
    optuna = import_optional("optuna", "sweeps", "the bayes sweep method (Optuna's TPE, offline)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if sweep["metric"].get("goal", "minimize") == "maximize" else "minimize"
    study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=seed))
    for _ in range(count):
        trial = study.ask()
        yield {name: _suggest(trial, name, spec) for name, spec in sweep["parameters"].items()}, (study, trial)


def run_sweep(
    path: str | Path,
    out: str | Path,
    max_trials: int | None = None,
    extra: tuple[str, ...] = (),
    seed: int = 0,
    in_process: InProcess | None = None,
) -> list[dict[str, Any]]:
    """Run the trials one after another (in this process with ``in_process``, see `execute`); write and return the
    summary (trial, parameters, metric)."""
    sweep = load_sweep(path)
    name = folder_name(sweep.get("name") or Path(path).stem, f"{path}: name")
    metric = (sweep.get("metric") or {}).get("name")
    folder = Path(out) / name
    rows = []
    for index, (parameters, asked) in enumerate(_trials(sweep, max_trials, seed)):
        trial_folder = folder / f"trial_{index:03d}"
        args = [
            *cli_arguments(agent_command(sweep, parameters)),
            *extra,
            *placement_flags(trial_folder, f"{name}/trial_{index:03d}", f"sweep/{name}"),
            f"--run_id={identity(f'sweep/{name}/trial_{index:03d}', trial_folder)}",
        ]
        record, state = run_metrics(trial_folder, require_test=False), "done"
        if record is None:  # not run before (a finished trial is kept: the sweep resumes)
            print(f"[trial {index}] vmp-lightning {shlex.join(args)}", flush=True)
            code = execute(args, None, in_process)
            record = run_metrics(trial_folder, require_test=False)
            if code != 0 or record is None:
                state = f"failed (exit code {code})"
                print(f"[trial {index}] {state}", flush=True)
        values = {**(record or {}).get("val", {}), **(record or {}).get("test", {})}
        value = values.get(metric) if metric else None
        if asked is not None:
            study, trial = asked
            failed = value is None or not math.isfinite(value)
            study.tell(trial, None if failed else value, state=optuna_state(failed))
        row = {"trial": index, **parameters, (metric or "metric"): value, "status": state}
        rows.append({**row, "folder": str(trial_folder)})
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(folder / "summary.csv") as partial, partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(rows)
    return rows


def optuna_state(failed: bool) -> Any:
    optuna = import_optional("optuna", "sweeps", "the bayes sweep method (Optuna's TPE, offline)")
    return optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE


def summary_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no trials"
    columns = [c for c in rows[0] if c != "folder"]
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for row in rows:
        cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
