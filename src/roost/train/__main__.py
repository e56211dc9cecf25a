"""`torchrun -m roost.train ...`: the trainer as a launcher's entry point, one process per rank.

    torchrun --standalone --nproc-per-node 2 -m roost.train --home H --name NAME --set dp_shard=2

Takes the same options as `roost train` (with `--name` for `--run`, which torchrun would take for
its own --run-path); only rank 0 prints the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import msgspec

from roost.train.prepare import prepare_config
from roost.train.trainer import NonFiniteLoss, train
from roost.workspace import DEFAULT_HOME, ConfigError, Workspace


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m roost.train", description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(os.environ.get("ROOST_HOME", DEFAULT_HOME)))
    # --name, since torchrun's own parser takes `--run` for an abbreviation of its --run-path.
    parser.add_argument("--name", "--run", dest="run", default="main", help="run name (resumed if it exists)")
    parser.add_argument("--config", type=Path, help="TOML or JSON file of [train] settings")
    parser.add_argument("--preset", help="model preset (tiny, 20m, 125m, 1b, 8b, 70b, 405b)")
    parser.add_argument("--set", dest="assignments", action="append", default=[], help="key=value override")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--time-budget", type=float, help="seconds")
    parser.add_argument("--sft", dest="sft_from", help="conversation-tune this pretrained run")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    ws = Workspace(args.home).ensure()
    try:
        config = prepare_config(
            ws,
            args.run,
            config_file=args.config,
            preset=args.preset,
            assignments=args.assignments,
            max_steps=args.max_steps,
            time_budget_s=args.time_budget,
            sft_from=args.sft_from,
        )
        result = train(ws, config, args.run)
    except (ConfigError, FileNotFoundError, NonFiniteLoss) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", 0)) == 0:
        print(json.dumps(msgspec.to_builtins(result)) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
