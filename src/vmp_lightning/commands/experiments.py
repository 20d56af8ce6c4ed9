"""`vmp-lightning reproduce | table | sweep`: the paper's tables and sweeps from experiment files."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from vmp_lightning.errors import ConfigError
from vmp_lightning.parsing import command_parser, split_passthrough


def seed_list(text: str | None) -> list[int] | None:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (None: the manifest's own seeds)."""
    if not text:
        return None
    try:
        return [int(seed) for seed in str(text).split(",") if seed.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes comma-separated integers (0,1,2), got {text!r}") from None


def reproduce(argv: list[str]) -> None:
    """Fit, then test, every run of an experiment manifest (experiments/table2.yaml), skipping finished runs and
    resuming interrupted ones; then write its table. Flags after ``--`` go to every ``fit``. Exits with 1 when a run
    failed."""
    from vmp_lightning.commands import main
    from vmp_lightning.harness.manifest import load_manifest
    from vmp_lightning.harness.reproduce import Options, stop_code
    from vmp_lightning.harness.reproduce import reproduce as run_all
    from vmp_lightning.harness.table import write_table

    parser = command_parser("reproduce", reproduce.__doc__)
    parser.add_argument("manifest", help="an experiment manifest (experiments/table2.yaml)")
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated: model/dataset (one cell; globs), a model with its +vmp variants, or a dataset",
    )
    parser.add_argument("--out", default="experiments/runs", help="where the run folders go")
    parser.add_argument("--results", default="experiments/results", help="where the table goes")
    parser.add_argument("--data-root", default=None, help="folder holding each dataset's folder")
    parser.add_argument("--ckpt-root", default=None, help="folder holding the pretrained checkpoints")
    parser.add_argument("--devices", default=None, help="trainer.devices for every run (>1: DDP subprocesses)")
    parser.add_argument("--precision", default=None, help="trainer.precision for every run")
    parser.add_argument("--smoke", action="store_true", help="synthetic videos, tiny models, one short epoch")
    parser.add_argument("--dry-run", action="store_true", help="print each run's command, run nothing")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds: every run once per seed (0,1,2)")
    parser.add_argument("--launcher", default="local", choices=["local", "slurm"], help="slurm: one job per run")
    parser.add_argument("--partition", default=None, help="slurm: the partition")
    parser.add_argument("--nodes", type=int, default=1, help="slurm: nodes per run")
    parser.add_argument("--gpus-per-node", type=int, default=1, help="slurm: GPUs (and tasks) per node; 0: a CPU job")
    parser.add_argument("--cpus-per-task", type=int, default=8, help="slurm: CPU cores per GPU (loader workers)")
    parser.add_argument("--time", type=int, default=24 * 60, help="slurm: each job's time limit in minutes")
    parser.add_argument("--retry-failed", action="store_true", help="slurm: submit runs whose last job failed again")
    parser.add_argument(
        "--sbatch", default=[], nargs="*", help="slurm: further sbatch settings, KEY=VALUE or a flag (account=x hold)"
    )
    own, extra = split_passthrough(argv)
    args = parser.parse_args(own)
    from vmp_lightning.harness.slurm import SlurmOptions

    slurm = None
    if args.launcher == "slurm":
        settings = {key: value or True for key, _, value in (item.partition("=") for item in args.sbatch)}
        slurm = SlurmOptions(
            args.partition, args.nodes, args.gpus_per_node, args.cpus_per_task, args.time, 120, settings
        )
    manifest = load_manifest(args.manifest, seed_list(args.seeds))
    out = Path(args.out) / ("smoke" if args.smoke else "")
    options = Options(
        out=out,
        data_root=Path(args.data_root) if args.data_root else None,
        ckpt_root=Path(args.ckpt_root) if args.ckpt_root else None,
        devices=args.devices,
        precision=args.precision,
        smoke=args.smoke,
        dry_run=args.dry_run,
        extra=tuple(extra),
        in_process=main,
        slurm=slurm,
        retry_failed=args.retry_failed,
    )
    status = run_all(manifest, options, args.only)
    code = stop_code(status)
    if code is not None:
        print(f"stopped; continue with: vmp-lightning reproduce {shlex.join(argv)}", flush=True)
        sys.exit(code)
    if not args.dry_run and slurm is None:
        results = Path(args.results) / ("smoke" if args.smoke else "")
        md, _ = write_table(manifest, out, results)
        print(md.read_text())
        print(f"table written to {md} and {md.with_suffix('.csv')}")
    if any(state.startswith("failed") for state in status.values()):
        sys.exit(1)


def table(argv: list[str]) -> None:
    """The runs' test metrics beside the paper's, laid out like the paper's table (Markdown and CSV): with seeds, each
    cell's mean and standard deviation, and each VMP row's gain over its baseline with a 95 % confidence interval."""
    from vmp_lightning.harness.manifest import load_manifest
    from vmp_lightning.harness.reproduce import run_folder, run_metrics
    from vmp_lightning.harness.table import write_table

    parser = command_parser("table", table.__doc__)
    parser.add_argument("manifest", help="an experiment manifest (experiments/table2.yaml)")
    parser.add_argument("--out", default="experiments/runs", help="the run folders")
    parser.add_argument("--results", default="experiments/results", help="where the table goes")
    parser.add_argument("--seeds", default=None, help="the seeds the runs were made with (as given to reproduce)")
    parser.add_argument("--smoke", action="store_true", help="the smoke runs (reproduce --smoke, SMOKE=1)")
    args = parser.parse_args(argv)
    out, results = (
        (Path(args.out) / "smoke", Path(args.results) / "smoke") if args.smoke else map(Path, (args.out, args.results))
    )
    manifest = load_manifest(args.manifest, seed_list(args.seeds))
    md, csv_path = write_table(manifest, out, results)
    done_in = [
        folder for folder in (out, out / "smoke") if any(run_metrics(run_folder(folder, r)) for r in manifest.runs)
    ]
    if not args.smoke and done_in == [out / "smoke"]:
        print(f"no run of {manifest.name} in {out}; its smoke runs are in {out / 'smoke'}: add --smoke")
    print(md.read_text())
    print(f"table written to {md} and {csv_path}")


def sweep(argv: list[str]) -> None:
    """Run a W&B sweep file offline (grid and random as W&B draws them, bayes through Optuna), each trial a normal
    run in its own folder; prints and writes (summary.csv) the table of trials, parameters and metric. Flags after
    ``--`` go to every trial."""
    from vmp_lightning.commands import main
    from vmp_lightning.harness.sweep import run_sweep, summary_table

    parser = command_parser("sweep", sweep.__doc__)
    parser.add_argument("sweep", help="a W&B sweep file (experiments/sweeps/lambda.yaml)")
    parser.add_argument("--max-trials", type=int, default=None, help="stop after N trials (random/bayes need it)")
    parser.add_argument("--out", default="experiments/sweeps/runs", help="where the trial folders go")
    parser.add_argument("--seed", type=int, default=0, help="of the random / bayes draws")
    own, extra = split_passthrough(argv)
    args = parser.parse_args(own)
    rows = run_sweep(args.sweep, args.out, args.max_trials, tuple(extra), args.seed, in_process=main)
    print(summary_table(rows))
    if rows:
        print(f"summary written to {Path(rows[0]['folder']).parent / 'summary.csv'}")
    failed = [row for row in rows if row["status"] != "done"]
    if failed or not rows:
        print(f"{len(failed)} of {len(rows)} trials failed", file=sys.stderr)
        sys.exit(1)


def download(argv: list[str]) -> None:
    """Fetch every pretrained checkpoint a manifest names (``checkpoint:`` from ``checkpoint_source:``) into
    CKPT_ROOT: resumable, retried, with a progress bar. The first fetch records each file's SHA-256 in
    ``checkpoints.sha256`` beside the manifest; later fetches (and files already there) must match it."""
    from vmp_lightning.harness.download import download_checkpoints
    from vmp_lightning.harness.manifest import load_manifest

    parser = command_parser("download", download.__doc__)
    parser.add_argument("manifest", help="an experiment manifest (experiments/table2.yaml)")
    parser.add_argument("--to", required=True, help="CKPT_ROOT: the folder the runs read checkpoints from")
    parser.add_argument("--mirror", default=None, help="take each file from this base URL instead (<URL>/<file>)")
    parser.add_argument("--retries", type=int, default=5, help="tries after the first, per file")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    for line in download_checkpoints(manifest, Path(args.manifest), Path(args.to), args.mirror, args.retries):
        print(line)
