"""Each saved agent of a Beta sweep evaluated at both deterministic actions, the Beta's mode and its mean.

    python benchmarks/both_actions.py --exp-name results_beta --env-ids HalfCheetah-v5 Hopper-v5 Walker2d-v5

With --sampled, also at actions sampled from the policy as in training (torch seeded with the run's seed): a
deterministic action far below the sampled one points at the deterministic action, not at what was learned.

For every run tagged --exp-name under runs/ that saved its agent (--save-model), the agent is evaluated on the
starts of its own final evaluation (its seed, its --eval-episodes) at the mode and at the mean, so one of the two
repeats that evaluation exactly. Writes {out_dir}/both_actions.md: one line per run, then the mean over seeds of
each environment at each action; the lines of other environments already there are kept, so the file can gather
several sweeps.
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
    sampled: bool = False
    """if toggled, add a column of the policy's sampled actions, as in training"""


def evaluate_both(run: dict, sampled: bool = False) -> dict[str, float]:
    """The run's agent.pt evaluated at each action (and sampled), on the starts of its own final evaluation."""
    saved = beta.load_checkpoint(os.path.join(run["run_dir"], "agent.pt"))
    args = beta.Args(**{f.name: saved["args"][f.name] for f in fields(beta.Args) if f.init})
    returns = {action: float(beta.evaluate(beta.load_policy(saved, "cpu", action), args).mean()) for action in ACTIONS}
    if sampled:
        torch.manual_seed(args.seed)
        returns["sampled"] = float(beta.evaluate(sampled_policy(saved), args).mean())
    return returns


def saved_agent(saved: dict):
    """The saved network and its observation statistics (None without --norm-obs)."""
    agent = beta.Agent(saved["obs_dim"], saved["action_dim"], saved["args"]["hidden_size"], saved["args"]["activation"])
    agent.load_state_dict(saved["agent"])
    obs_rms = None if saved["obs_stats"] is None else beta.RunningMeanStd(shape=(saved["obs_dim"],))
    beta.running_stats(obs_rms, saved["obs_stats"])
    return agent, obs_rms


def sampled_policy(saved: dict):
    """The saved agent's actions sampled from its Beta, as in training, in the env's units."""
    agent, obs_rms = saved_agent(saved)
    low, high = saved["action_low"].numpy(), saved["action_high"].numpy()

    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            u, _ = agent.get_action(torch.as_tensor(beta.normalize_obs(obs, obs_rms), dtype=torch.float32))
        return beta.to_env_action(u.numpy(), low, high)
    return policy


def kept_lines(path: str, columns: int) -> dict[str, list[str]]:
    """The per-run lines already in `path` with `columns` returns each, by environment (none without the file)."""
    kept = {}
    if os.path.isfile(path):
        for line in open(path).read().split("\n\n")[2].splitlines()[2:]:
            if line.count(" | ") == 2 + columns:
                kept.setdefault(line[2:].split(" | ")[0], []).append(line)
    return kept


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv)
    torch.set_num_threads(1)
    runs = [run for run in find_runs(args.exp_name, args.env_ids)
            if os.path.isfile(os.path.join(run["run_dir"], "agent.pt"))]
    if not runs:
        print(f"error: no run tagged {args.exp_name} under runs/ saved its agent; sweep with -- --save-model",
              file=sys.stderr)
        return 2
    actions = ACTIONS + ("sampled",) * args.sampled
    labels = [f"at the {action}" if action in ACTIONS else action for action in actions]
    headings, rule = " | ".join(labels), "|---" * len(actions) + "|"
    path = os.path.join(args.out_dir, "both_actions.md")
    per_env, fresh = kept_lines(path, len(actions)), {}
    for run in runs:
        both = evaluate_both(run, args.sampled)
        line = (f"| {run['env_id']} | {run['seed']} | {run['args']['deterministic_action']} | "
                + " | ".join(f"{both[action]:.1f}" for action in actions) + " |")
        fresh.setdefault(run["env_id"], []).append(line)
        print(line, flush=True)
    per_env.update(fresh)  # an environment evaluated now replaces its old lines where they stood
    lines = [f"| environment | seed | action of the command | {headings} |", "|---|---|---" + rule]
    lines += [line for env_lines in per_env.values() for line in env_lines]
    lines += ["", f"| environment | seeds | {' | '.join(f'mean {label}' for label in labels)} |", "|---|---" + rule]
    for env_id, env_lines in per_env.items():
        values = [[float(cell) for cell in line.strip("| ").split(" | ")[3:]] for line in env_lines]
        means = " | ".join(f"{mean:.1f}" for mean in np.mean(values, axis=0))
        lines.append(f"| {env_id} | {len(values)} | {means} |")
    os.makedirs(args.out_dir, exist_ok=True)
    with open(path, "w") as f:
        f.write("# Saved agents at both deterministic actions\n\n"
                "Each agent of the sweeps gathered here evaluated on the starts of its own final evaluation "
                "(`benchmarks/both_actions.py`): "
                f"at the Beta's mode and at its mean{', and sampled as in training' * args.sampled}.\n\n"
                + "\n".join(lines) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
