"""How close to the optimum can the Beta actor get on the swing-up pendulum when it is shown the optimal controller?

    python benchmarks/swingup_imitation.py --hidden-size 64 --seeds 6 7 8 9 10 11 12

A capacity check for the PPO results, with no reinforcement learning in it: the actor network of
ppo_continuous_beta.py (same layers, same initialisation, same deterministic action) is fitted by supervised
regression of its deterministic action onto the DP controller's action (pendulum_optimal, default grid, whole
episode to go), on uniform states and on the states of DP episodes. It is then scored like a PPO run: on each
run seed's 100 evaluation starts, beside the DP controller, with the extra swings counted as
swingup_family.py counts them. The gap it leaves is what the network leaves when the learning signal is
perfect; PPO's gap beyond it is what learning from rewards loses.
"""

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import tyro

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import ppo_continuous_beta as beta  # noqa: E402
from benchmarks import pendulum_optimal  # noqa: E402
from benchmarks.swingup_family import LATE  # noqa: E402
from pendulum_env import observe  # noqa: E402


@dataclass
class Args:
    hidden_size: int = 64
    """width of the actor's two hidden layers"""
    activation: str = "tanh"
    """tanh or relu"""
    steps: int = 20_000
    """gradient steps of 4,096 states each"""
    uniform_states: int = 300_000
    """states drawn uniformly over angle and velocity"""
    episodes: int = 3_000
    """DP episodes from random starts whose states (200 each) join the training set"""
    seeds: tuple[int, ...] = (6, 7, 8, 9, 10, 11, 12)
    """PPO run seeds whose 100 evaluation starts score the fitted actor"""
    seed: int = 0
    """seed of the training set and the network"""


def training_set(solution, args: Args, rng: np.random.Generator):
    """States (angle, velocity) and the DP controller's action in each, with the whole episode to go."""
    speed = solution.config.max_speed
    angle, velocity = rng.uniform(-np.pi, np.pi, args.episodes), rng.uniform(-speed, speed, args.episodes)
    visited = pendulum_optimal.simulate(solution, angle, velocity)
    uniform_angle = rng.uniform(-np.pi, np.pi, args.uniform_states)
    uniform_velocity = rng.uniform(-speed, speed, args.uniform_states)
    # step by step: the states of every episode at step 0, then at step 1, ...
    angle = np.concatenate([uniform_angle, visited.angles.T.ravel()])
    velocity = np.concatenate([uniform_velocity, visited.velocities.T.ravel()])
    best = np.concatenate([pendulum_optimal.greedy_actions(solution, a, v, solution.steps)
                           for a, v in zip(np.array_split(angle, 10), np.array_split(velocity, 10))])
    return angle, velocity, solution.actions[best]


def main(args: Args):
    torch.manual_seed(args.seed)
    solution = pendulum_optimal.solve()
    angle, velocity, target = training_set(solution, args, np.random.default_rng(args.seed))
    obs = torch.as_tensor(observe(angle, velocity, solution.config), dtype=torch.float32)
    target = torch.as_tensor(target, dtype=torch.float32)[:, None]
    agent = beta.Agent(obs.shape[1], 1, args.hidden_size, args.activation)
    optimizer = torch.optim.Adam(agent.parameters(), lr=1e-3)  # the critic gets no gradient and stays as it is
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.01, args.steps)
    started = time.time()
    for _ in range(args.steps):
        batch = torch.randint(len(obs), (4096,))
        loss = ((agent.act_deterministic(obs[batch]) - target[batch]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    print(f"actor {args.hidden_size} x 2 {args.activation}: {len(obs):,} states, {args.steps:,} steps, "
          f"final squared error {loss.item():.4f}, {time.time() - started:.0f} s")

    def controller(angle, velocity):
        with torch.inference_mode():
            return agent.act_deterministic(torch.as_tensor(observe(angle, velocity, solution.config),
                                                           dtype=torch.float32)).numpy()[:, 0]

    for seed in args.seeds:
        starts = pendulum_optimal.starts_for_seeds(beta.env_seeds(seed, 100, stream=(1,)))
        optimal = pendulum_optimal.simulate(solution, *starts)
        fitted = pendulum_optimal.simulate(solution, *starts, controller)
        gap = 100 * (optimal.returns.mean() - fitted.returns.mean()) / -optimal.returns.mean()
        late = (fitted.upright_from - optimal.upright_from >= LATE).sum()
        print(f"seed {seed}: optimum {optimal.returns.mean():7.2f}, fitted actor {fitted.returns.mean():7.2f}, "
              f"gap {gap:4.1f}%, late by {LATE}+ steps: {late}/100 episodes")


if __name__ == "__main__":
    main(tyro.cli(Args))
