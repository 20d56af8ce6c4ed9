"""Start-up of the command line: how long `vmp-lightning --help` and the light commands take against
`python -c "import torch"` (the floor of anything that trains), and `fit --help` (which needs Lightning).

Each command runs in a fresh process, round-robin (A B C A B C ...) so that a shared machine's drift hits every
command alike; medians over ``--repeats`` rounds. Goal: `vmp-lightning --help` <= 1.5x `import torch`.

    python benchmarks/startup.py            # writes benchmarks/results/startup.{json,md}
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from measure import machine_facts, time_steps_interleaved, write_results

COMMANDS = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "vmp-lightning --help": [sys.executable, "-m", "vmp_lightning", "--help"],
    "vmp-lightning table --help": [sys.executable, "-m", "vmp_lightning", "table", "--help"],
    "vmp-lightning prepare --help": [sys.executable, "-m", "vmp_lightning", "prepare", "--help"],
    "vmp-lightning visualize --help": [sys.executable, "-m", "vmp_lightning", "visualize", "--help"],
    "vmp-lightning fit --help": [sys.executable, "-m", "vmp_lightning", "fit", "--help"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "startup"))
    args = parser.parse_args()

    def runner(command: list[str]):
        return lambda: subprocess.run(command, check=True, capture_output=True)

    seconds = time_steps_interleaved({name: runner(command) for name, command in COMMANDS.items()}, args.repeats)
    torch_import = seconds['python -c "import torch"']
    facts = machine_facts(repeats=args.repeats)
    lines = [
        f"Start-up, a fresh process per command, median of {args.repeats} interleaved rounds, {facts['cpu']}, "
        f"torch {facts['torch']}, {facts['date']}",
        "",
        "| command | seconds | x `import torch` |",
        "|---|---|---|",
        *(f"| `{name}` | {value:.2f} | {value / torch_import:.2f} |" for name, value in seconds.items()),
    ]
    ratio = seconds["vmp-lightning --help"] / torch_import
    lines += ["", f"- `vmp-lightning --help` / `import torch`: {ratio:.2f} (goal <= 1.5)"]
    write_results(args.out, {**facts, "seconds": seconds, "help_over_torch": ratio}, lines)


if __name__ == "__main__":
    main()
