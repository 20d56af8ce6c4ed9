"""Experiment manifests: the runs of a paper table, each composed from config files plus a few settings.

A manifest (``experiments/table2.yaml``) names datasets and models; every (model, dataset) pair is one run whose
config is the concatenation, in order, of the manifest's ``configs``, the dataset's and the model's (a model may
``extends`` another and add files and settings). Config paths are relative to the manifest's folder or its parent
(the repository). ``paper`` holds the published top-1 / top-5 of each run, ``columns`` the table's layout, and
``smoke`` the overrides of the end-to-end check on synthetic videos (tiny widths, one epoch), or the name of
another manifest whose ``smoke`` to use; ``seeds`` repeats every run once per seed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from vmp_lightning.errors import UserError
from vmp_lightning.parsing import read_yaml
from vmp_lightning.runs import folder_name


class ManifestError(UserError, ValueError):
    """A manifest that cannot be read: the message names the file and the entry."""


def as_flags(settings: dict[str, Any] | None) -> list[str]:
    """``{"model.init_args.vmp": True}`` -> ``["--model.init_args.vmp=true"]`` (values as YAML / JSON)."""
    flags = []
    for key, value in (settings or {}).items():
        if isinstance(value, bool):
            text = str(value).lower()
        elif value is None:
            text = "null"
        elif isinstance(value, (list, dict)):
            text = json.dumps(value)
        else:
            text = str(value)
        flags.append(f"--{key}={text}")
    return flags


@dataclass(frozen=True)
class Run:
    """One run of a manifest: ``<model>/<dataset>``."""

    manifest: str
    model: str
    dataset: str
    configs: tuple[str, ...]
    settings: dict[str, Any]
    backbone: str  # the model's base (``extends`` chain root): SlowFast, X3D, TimeSformer rows share one
    data_root: str | None = None  # the dataset's folder under DATA_ROOT
    checkpoint: str | None = None  # the pretrained file under CKPT_ROOT
    checkpoint_source: str | None = None
    init_from: str | None = None  # a model of the same manifest whose best checkpoint (same dataset) starts this run
    vmp: bool = False
    paper: tuple[float | None, float | None] = (None, None)
    smoke_settings: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # manifests with ``seeds`` repeat every run once per seed

    @property
    def name(self) -> str:
        return f"{self.model}/{self.dataset}" + ("" if self.seed is None else f"/seed{self.seed}")

    @property
    def tags(self) -> list[str]:
        seed = [] if self.seed is None else [f"seed{self.seed}"]
        return [self.backbone, self.dataset, "vmp" if self.vmp else "baseline", *seed]

    def flags(self, smoke: bool = False) -> list[str]:
        """The config files and settings as ``vmp-lightning fit`` arguments."""
        merged = {**self.settings, **(self.smoke_settings if smoke else {})}
        if self.seed is not None:
            merged["seed_everything"] = self.seed
        return [*(f"--config={path}" for path in self.configs), *as_flags(merged)]


@dataclass
class Manifest:
    path: Path
    name: str
    title: str
    runs: list[Run]
    rows: list[tuple[str, str]]  # (model, title) in table order
    columns: list[dict[str, Any]]
    smoke_layouts: dict[str, str]  # dataset -> synthetic layout (hmdb51, finegym, mpii_cooking2)
    published: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # model -> key -> the paper's numbers
    notes: list[str] = field(default_factory=list)  # printed under the table
    baselines: dict[str, str] = field(default_factory=dict)  # VMP model -> the baseline it extends (its gain's base)

    def select(self, only: str | None) -> list[Run]:
        """The runs matching any of the comma-separated patterns (all runs when empty): ``model/dataset`` picks a
        cell (either side may be empty or a glob: ``x3d*/hmdb51_s?``); a bare word a whole model with its ``+``
        variants (``timesformer``: timesformer and timesformer+vmp), or a dataset (``finegym``)."""
        patterns = [p.strip() for p in (only or "").split(",") if p.strip()]
        chosen = [r for r in self.runs if not patterns or any(run_matches(r, p) for p in patterns)]
        if patterns and not chosen:
            raise ManifestError(f"{self.path}: no run matches ONLY={only!r}; runs are e.g. {self.runs[0].name}")
        return chosen

    def run(self, model: str, dataset: str, seed: int | None = None) -> Run:
        return next(r for r in self.runs if (r.model, r.dataset, r.seed) == (model, dataset, seed))


def run_matches(run: Run, pattern: str) -> bool:
    """Whether ``run`` is selected by one ``--only`` pattern (`Manifest.select`)."""
    if "/" in pattern:
        model, _, dataset = pattern.partition("/")
        return fnmatchcase(run.model, model or "*") and fnmatchcase(run.dataset, dataset or "*")
    return (
        fnmatchcase(run.model, pattern) or fnmatchcase(run.model, f"{pattern}+*") or fnmatchcase(run.dataset, pattern)
    )


def _resolve(path: str, manifest: Path) -> str:
    for base in (manifest.parent, manifest.parent.parent):
        if (base / path).is_file():
            return os.path.normpath(base / path)
    raise ManifestError(f"{manifest}: config file {path} not found next to the manifest or in its parent folder")


def load_manifest(path: str | Path, seeds: list[int] | None = None) -> Manifest:
    """A manifest's runs; ``seeds`` (``--seeds``) replaces its own ``seeds:``: every run once per seed."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} not found")
    spec = read_yaml(path) or {}
    for key in ("name", "datasets", "models", "columns"):
        if key not in spec:
            raise ManifestError(f"{path}: needs a '{key}' entry")
    folder_name(spec["name"], f"{path}: name")
    for section in ("models", "datasets"):
        for key in spec[section]:
            folder_name(key, f"{path}: {section[:-1]}")
    smoke = spec.get("smoke") or {}
    if isinstance(smoke, str):  # another manifest's smoke settings
        smoke = (read_yaml(_resolve(smoke, path)) or {}).get("smoke") or {}
    models: dict[str, dict[str, Any]] = {}
    parents: dict[str, str] = {}
    for model, entry in spec["models"].items():  # resolve `extends` (parents are listed first)
        entry = dict(entry or {})
        parent = entry.pop("extends", None)
        if parent is not None:
            parents[model] = parent
        if parent is not None and parent not in models:
            raise ManifestError(f"{path}: model {model} extends {parent}, which is not listed before it")
        base = models.get(parent, {"configs": [], "settings": {}, "backbone": entry.get("backbone", model)})
        models[model] = {
            **base,
            **{k: v for k, v in entry.items() if k not in ("configs", "settings")},
            "configs": [*base["configs"], *entry.get("configs", [])],
            "settings": {**base["settings"], **(entry.get("settings") or {})},
            "backbone": base["backbone"],
        }
    runs = []
    seeds = seeds or spec.get("seeds") or [None]
    for model, entry in models.items():
        for dataset, data in spec["datasets"].items():
            data = data or {}
            configs = [*spec.get("configs", []), *data.get("configs", []), *entry["configs"]]
            settings = {**(spec.get("settings") or {}), **(data.get("settings") or {}), **entry["settings"]}
            paper = (spec.get("paper") or {}).get(model, {}).get(dataset) or []
            paper = tuple(paper) + (None,) * (2 - len(paper))
            smoke_settings = {
                **(smoke.get("settings") or {}),
                **((smoke.get("datasets") or {}).get(dataset) or {}),
                **((smoke.get("backbones") or {}).get(entry["backbone"]) or {}),
            }
            runs.extend(
                Run(
                    manifest=spec["name"],
                    model=model,
                    dataset=dataset,
                    configs=tuple(_resolve(c, path) for c in configs),
                    settings=settings,
                    backbone=entry["backbone"],
                    data_root=data.get("root"),
                    checkpoint=entry.get("checkpoint"),
                    checkpoint_source=entry.get("checkpoint_source"),
                    init_from=entry.get("init_from"),
                    vmp=bool(entry.get("vmp", settings.get("model.init_args.vmp", False))),
                    paper=paper[:2],
                    smoke_settings=smoke_settings,
                    seed=seed,
                )
                for seed in seeds
            )
    for run in runs:
        if run.init_from is not None and run.init_from not in models:
            raise ManifestError(f"{path}: {run.model} starts from {run.init_from}, which is not a model here")
    rows = [(model, entry.get("title", model)) for model, entry in models.items()]
    layouts = {d: (v or {}).get("smoke_layout", d) for d, v in spec["datasets"].items()}
    title, published, notes = spec.get("title", spec["name"]), spec.get("paper") or {}, spec.get("notes") or []
    vmp = {run.model: run.vmp for run in runs}
    baselines = {model: parent for model, parent in parents.items() if vmp[model] and not vmp[parent]}
    return Manifest(path, spec["name"], title, runs, rows, spec["columns"], layouts, published, notes, baselines)
