"""Speed of the swing-up pendulum's native vector env against Gymnasium's SyncVectorEnv of single envs.

    python benchmarks/pendulum_speed.py
    python benchmarks/pendulum_speed.py --env-counts 1 16 64 256 --steps-per-env 400

For each number of environments it prints the environment steps per second of both, with same-step
autoreset, on the same pre-drawn random actions: the median of 3 runs, each from a reset with seed 0.
The default 400 steps per env are two full episodes, so the autoreset path is timed too. Measure on a
quiet machine: whatever else runs on the cores slows down what is timed.
"""

import argparse
import os
import sys
import time

import gymnasium as gym
import numpy as np

# Run as a script, Python puts benchmarks/ on the path, not the repository root that holds pendulum_env.py.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pendulum_env  # noqa: E402  (after the path fix above)


def steps_per_second(env, actions: np.ndarray, repeats: int = 3) -> float:
    """Median over `repeats` runs of environment steps per second on pre-drawn actions (steps, num_envs, 1)."""
    rates = []
    for _ in range(repeats):
        env.reset(seed=0)
        start = time.perf_counter()
        for action in actions:
            env.step(action)
        rates.append(actions.shape[0] * actions.shape[1] / (time.perf_counter() - start))
    return float(np.median(rates))


def benchmark(env_counts=(1, 16, 64, 256), steps_per_env: int = 400):
    """Print a table: steps per second of the native and the sync vector env, and their ratio."""
    mode = gym.vector.AutoresetMode.SAME_STEP
    print(f"{pendulum_env.ENV_ID}: environment steps per second ({mode.value} autoreset, "
          f"{steps_per_env} steps per env, median of 3)")
    print(f"{'num_envs':>8} {'native':>12} {'sync':>12} {'native/sync':>12}")
    for num_envs in env_counts:
        actions = np.random.default_rng(0).random((steps_per_env, num_envs, 1), dtype=np.float32)
        native = gym.make_vec(pendulum_env.ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point",
                              autoreset_mode=mode)
        sync = gym.make_vec(pendulum_env.ENV_ID, num_envs=num_envs, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": mode})
        native_rate, sync_rate = steps_per_second(native, actions), steps_per_second(sync, actions)
        print(f"{num_envs:>8} {native_rate:>12,.0f} {sync_rate:>12,.0f} {native_rate / sync_rate:>11.1f}x")
        native.close()
        sync.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-counts", type=int, nargs="+", default=[1, 16, 64, 256], metavar="N",
                        help="numbers of environments, one table row each (default: 1 16 64 256)")
    parser.add_argument("--steps-per-env", type=int, default=400, metavar="N",
                        help="steps of each environment per timed run (default: 400, two episodes)")
    args = parser.parse_args(argv)
    if min(args.env_counts) < 1 or args.steps_per_env < 1:
        parser.error("--env-counts and --steps-per-env take whole numbers >= 1")
    benchmark(args.env_counts, args.steps_per_env)


if __name__ == "__main__":
    main()
