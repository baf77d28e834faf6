"""Each saved agent of a Beta sweep evaluated at both deterministic actions, the Beta's mode and its mean.

    python benchmarks/both_actions.py --exp-name results_beta --env-ids HalfCheetah-v5 Hopper-v5 Walker2d-v5

For every run tagged --exp-name under runs/ that saved its agent (--save-model), the agent is evaluated on the
starts of its own final evaluation (its seed, its --eval-episodes) at the mode and at the mean, so one of the two
repeats that evaluation exactly. Writes {out_dir}/both_actions.md: one line per run, then the mean over seeds of
each environment at each action.
"""

import os
import sys
from dataclasses import dataclass, fields

import numpy as np
import torch
import tyro

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ppo_continuous_beta as beta  # noqa: E402  (the repository root, where the script is)
from benchmarks.sweep import find_runs  # noqa: E402

ACTIONS = ("mode", "mean")


@dataclass
class Args:
    """Evaluate the saved agents of a sweep of ppo_continuous_beta.py at the mode and at the mean."""

    exp_name: str = "results_beta"
    """tag of the sweep's runs (sweep.py's --exp-name)"""
    env_ids: tuple[str, ...] | None = None
    """environment ids (all found when not given)"""
    out_dir: str = "benchmarks/results/beta"
    """folder for both_actions.md"""


def evaluate_both(run: dict) -> dict[str, float]:
    """The run's agent.pt evaluated at each action, on the starts of its own final evaluation."""
    saved = beta.load_checkpoint(os.path.join(run["run_dir"], "agent.pt"))
    args = beta.Args(**{f.name: saved["args"][f.name] for f in fields(beta.Args) if f.init})
    return {action: float(beta.evaluate(beta.load_policy(saved, "cpu", action), args).mean()) for action in ACTIONS}


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv)
    torch.set_num_threads(1)
    runs = [run for run in find_runs(args.exp_name, args.env_ids)
            if os.path.isfile(os.path.join(run["run_dir"], "agent.pt"))]
    if not runs:
        print(f"error: no run tagged {args.exp_name} under runs/ saved its agent; sweep with -- --save-model",
              file=sys.stderr)
        return 2
    lines = ["| environment | seed | action of the command | at the mode | at the mean |", "|---|---|---|---|---|"]
    returns = {}
    for run in runs:
        both = evaluate_both(run)
        returns.setdefault(run["env_id"], []).append([both[action] for action in ACTIONS])
        lines.append(f"| {run['env_id']} | {run['seed']} | {run['args']['deterministic_action']} | "
                     f"{both['mode']:.1f} | {both['mean']:.1f} |")
        print(lines[-1], flush=True)
    lines += ["", "| environment | seeds | mean at the mode | mean at the mean |", "|---|---|---|---|"]
    for env_id, values in returns.items():
        mode, mean = np.mean(values, axis=0)
        lines.append(f"| {env_id} | {len(values)} | {mode:.1f} | {mean:.1f} |")
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "both_actions.md"), "w") as f:
        f.write(f"# The saved agents of runs tagged {args.exp_name} at both deterministic actions\n\n"
                "Each agent evaluated on the starts of its own final evaluation (`benchmarks/both_actions.py`): "
                "at the Beta's mode and at its mean.\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {os.path.join(args.out_dir, 'both_actions.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
