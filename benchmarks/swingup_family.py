"""The swing-up pendulum family: each run against the dynamic-programming optimum of its own evaluation starts.

    python benchmarks/swingup_family.py 'runs/*__f_default__*' 'runs/*__f_motor3__*' ...

For every run directory (trained by ppo_continuous_beta.py with --eval-every and --save-model, any
--env-kwargs) it solves the pendulum with the run's physics (pendulum_optimal.solve, default grid), scores the
DP controller on the run's own evaluation starts, and prints the run's evaluation return, its gap to that
optimum, and the steps and seconds (from the run's start) at which its evaluation first came within 10% and
within 5% of it. For a run that saved its agent it also replays the agent from the same starts and counts the
episodes it catches the pendulum upright (pendulum_optimal.UPRIGHT) at least LATE steps after the DP controller
does, a whole extra swing, and their share of the return lost to the optimum; and the shares of a grid of states
where the actor's alpha head, its beta head and both have a softplus input below DEAD, where softplus passes
almost no gradient: there alpha (beta) is stuck at 1, so the policy can never lean towards forward (backward)
torque and its mode is full torque backwards (forwards), and where both are, the action is a uniform random torque
that training cannot change.
"""

import glob
import json
import os
import sys

import numpy as np
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import ppo_continuous_beta as beta  # noqa: E402
from benchmarks import pendulum_optimal  # noqa: E402
from benchmarks.both_actions import saved_agent  # noqa: E402
from benchmarks.sweep import first_reached  # noqa: E402
from pendulum_env import observe  # noqa: E402

LATE = 15  # steps (0.75 s at the default dt); an extra swing costs 20-30
DEAD = -5.0  # softplus'(x) = sigmoid(x) < 0.007 below it


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
        optimal = pendulum_optimal.simulate(solutions[kwargs], *starts)
        optimum = optimal.returns.mean()
        gap = 100 * (optimum - summary["eval_mean"]) / -optimum
        summary["run_dir"] = run  # where first_reached finds the evaluation curve
        print(f"{' '.join(kwargs) or '(default)':20s} seed {args['seed']}: optimum {optimum:7.1f}, "
              f"ours {summary['eval_mean']:7.1f}, gap {gap:5.1f}%; within 10%: "
              f"{first_within(summary, optimum, 0.10)}; within 5%: "
              f"{first_within(summary, optimum, 0.05)}; wall {summary['wall_time']:.0f} s"
              f"{late_swings(run, solutions[kwargs], starts, optimal)}{dead_heads(run, config)}")


def late_swings(run: str, solution, starts, optimal) -> str:
    """How many of the run's evaluation episodes catch the pendulum LATE or more steps after the optimum does, and
    their share of the return lost; empty for a run without agent.pt."""
    if not os.path.exists(f"{run}/agent.pt"):
        return ""
    policy = beta.load_policy(f"{run}/agent.pt")  # the run's own deterministic action

    def controller(angle, velocity):
        return policy(observe(angle, velocity, solution.config))[:, 0]

    ours = pendulum_optimal.simulate(solution, *starts, controller)
    late, lost = ours.upright_from - optimal.upright_from >= LATE, optimal.returns - ours.returns
    share = lost[late].sum() / lost.sum() if lost.sum() > 0 else 0.0
    return f"; late by {LATE}+ steps: {late.sum()}/{len(late)} episodes, {share:.0%} of the loss"


def dead_heads(run: str, config) -> str:
    """Shares of a 200 x 100 grid of angles and velocities where the alpha head's softplus input, the beta head's
    and both are below DEAD; empty for a run without agent.pt."""
    if not os.path.exists(f"{run}/agent.pt"):
        return ""
    agent, obs_rms = saved_agent(beta.load_checkpoint(f"{run}/agent.pt"))
    angle, velocity = np.meshgrid(np.linspace(-np.pi, np.pi, 200), np.linspace(-1, 1, 100) * config.max_speed)
    obs = beta.normalize_obs(observe(angle.ravel(), velocity.ravel(), config), obs_rms)
    with torch.no_grad():
        hidden = agent.actor_body(torch.as_tensor(obs, dtype=torch.float32))
        alpha_dead, beta_dead = agent.alpha_head(hidden)[:, 0] < DEAD, agent.beta_head(hidden)[:, 0] < DEAD
    shares = [dead.float().mean() for dead in (alpha_dead, beta_dead, alpha_dead & beta_dead)]
    return "; softplus input < {:g}: alpha head {:.0%}, beta head {:.0%}, both {:.0%}".format(DEAD, *shares)


if __name__ == "__main__":
    main(sys.argv[1:] or ["runs/*"])
