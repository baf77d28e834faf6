"""The swing-up pendulum family: each run against the dynamic-programming optimum of its own evaluation starts.

    python benchmarks/swingup_family.py 'runs/*__f_default__*' 'runs/*__f_motor3__*' ...

For every run directory (trained by ppo_continuous_beta.py with --eval-every and --save-model, any
--env-kwargs) it solves the pendulum with the run's physics (pendulum_optimal.solve, default grid), scores the
DP controller on the run's own evaluation starts, and prints the run's evaluation return, its gap to that
optimum, and the steps and seconds (from the run's start) at which its evaluation first came within 10% and
within 5% of it.
"""

import glob
import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import ppo_continuous_beta as beta  # noqa: E402
from benchmarks import pendulum_optimal  # noqa: E402
from benchmarks.sweep import first_reached  # noqa: E402


def first_within(run: dict, optimum: float, fraction: float) -> str:
    """Steps and seconds of the first evaluation within `fraction` of the (negative) optimum, or "never"."""
    reached = first_reached(run, optimum * (1 + fraction))
    return "never" if reached is None else f"{reached[0] / 1e6:.2f}M, {reached[1]:.0f} s"


def main(patterns: list[str]):
    solutions = {}
    for run in sorted(path for pattern in patterns for path in glob.glob(pattern)):
        with open(f"{run}/summary.json") as f:
            summary = json.load(f)
        args, kwargs = summary["args"], tuple(summary["args"]["env_kwargs"])
        config = pendulum_optimal.parse_env_kwargs(kwargs)
        if kwargs not in solutions:  # one DP solve per physics, not per run
            solutions[kwargs] = pendulum_optimal.solve(config)
        seeds = beta.env_seeds(args["seed"], args["eval_episodes"], stream=(1,))
        starts = pendulum_optimal.starts_for_seeds(seeds, config)
        optimum = pendulum_optimal.optimal_returns(solutions[kwargs], starts).mean()
        gap = 100 * (optimum - summary["eval_mean"]) / -optimum
        print(f"{' '.join(kwargs) or '(default)':20s} seed {args['seed']}: optimum {optimum:7.1f}, "
              f"ours {summary['eval_mean']:7.1f}, gap {gap:5.1f}%; within 10%: "
              f"{first_within(summary | {'run_dir': run}, optimum, 0.10)}; within 5%: "
              f"{first_within(summary | {'run_dir': run}, optimum, 0.05)}; wall {summary['wall_time']:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs/*"])
