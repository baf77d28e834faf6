"""Stable-Baselines3's PPO with rl-baselines3-zoo's tuned hyperparameters, one process from start to an
evaluated agent: the anchor `benchmarks/speed.py --side-by-side` times our scripts against.

    /path/to/sb3-venv/bin/python benchmarks/sb3_driver.py --env-id CartPole-v1 --seed 1 --eval-episodes 20

Stable-Baselines3 has no command line of its own, so this is ours. It needs a Python with
stable-baselines3 installed (`pip install torch==2.13.0 stable-baselines3`, in an environment of its own:
it is not one of this project's requirements) and imports nothing of this project. The hyperparameters
are rl-zoo's `hyperparams/ppo.yml` entries for these environments (read from rl-zoo in November 2026);
what they do not set is SB3's default. `lin_X` there is a schedule falling linearly from X to 0 over the
run. After training, the deterministic policy is evaluated on `--eval-episodes` episodes and the result
printed in the line our scripts print, `evaluation over N episodes: MEAN +- STD`.
"""

import argparse
import time

import numpy as np

# rl-zoo's PPO settings: n_envs and n_timesteps, then the keyword arguments of stable_baselines3.PPO
ZOO = {
    "CartPole-v1": (8, 100_000, dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                                     ent_coef=0.0, learning_rate="lin_0.001", clip_range="lin_0.2")),
    "Pendulum-v1": (4, 100_000, dict(n_steps=1024, gae_lambda=0.95, gamma=0.9, n_epochs=10, ent_coef=0.0,
                                     learning_rate=1e-3, clip_range=0.2, use_sde=True, sde_sample_freq=4)),
}


def schedule(value):
    """rl-zoo's "lin_X": X times the fraction of training left (SB3 passes that fraction, 1 down to 0)."""
    if isinstance(value, str) and value.startswith("lin_"):
        start = float(value[len("lin_"):])
        return lambda progress_remaining: progress_remaining * start
    return value


def evaluate(model, env_id: str, episodes: int, seed: int) -> np.ndarray:
    """Returns of `episodes` episodes of the deterministic policy, each from its own seed."""
    import gymnasium as gym
    env = gym.make(env_id)
    returns = np.zeros(episodes)
    for episode in range(episodes):
        obs, _ = env.reset(seed=1_000_000 + seed * episodes + episode)
        done = False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[episode] += reward
            done = terminated or truncated
    env.close()
    return returns


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-id", choices=sorted(ZOO), default="CartPole-v1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-episodes", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.logger import Logger
    except ImportError:
        parser.exit(2, "sb3_driver.py: error: stable-baselines3 is not installed in this Python; run it with the "
                       "Python of an environment that has it (pip install torch==2.13.0 stable-baselines3)\n")
    n_envs, total_timesteps, settings = ZOO[args.env_id]
    start = time.perf_counter()
    envs = make_vec_env(args.env_id, n_envs=n_envs, seed=args.seed)
    model = PPO("MlpPolicy", envs, seed=args.seed, verbose=0,
                **{key: schedule(value) for key, value in settings.items()})
    model.set_logger(Logger(folder=None, output_formats=[]))  # verbose=0 logs nothing, yet SB3 makes /tmp/SB3-* folders
    model.learn(total_timesteps=total_timesteps)
    train_time = time.perf_counter() - start
    returns = evaluate(model, args.env_id, args.eval_episodes, args.seed)
    print(f"evaluation over {args.eval_episodes} episodes: {returns.mean():.2f} +- {returns.std():.2f} "
          f"({model.num_timesteps:,} steps, {train_time:.1f} s of training)")


if __name__ == "__main__":
    main()
