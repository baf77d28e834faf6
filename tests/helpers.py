"""Small environments and readers shared by the tests."""

import glob

import gymnasium as gym
import numpy as np


class ConstantRewardEnv(gym.Env):
    """Observation [1], reward 1 every step, never terminates: its value is 1 / (1 - gamma).

    `observation="sequence"` gives a space that cannot be flattened, and
    `action="multidiscrete"` or `action="box"` an action space of another kind,
    to test what the scripts refuse; `reward` replaces the reward (e.g. NaN).
    """

    def __init__(self, observation="box", action="discrete", reward=1.0):
        box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = gym.spaces.Sequence(box) if observation == "sequence" else box
        self.action_space = {"discrete": gym.spaces.Discrete(2),
                             "multidiscrete": gym.spaces.MultiDiscrete([2, 2]),
                             "box": gym.spaces.Box(0.0, 1.0, (1,), np.float32)}[action]
        self.reward = reward

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.ones(1, np.float32), {}

    def step(self, action):
        return np.ones(1, np.float32), self.reward, False, False, {}


def register_once(env_id, entry_point, **kwargs):
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=entry_point, **kwargs)


def read_scalars(run_dir: str) -> dict:
    """All scalars of a TensorBoard run as {tag: [(step, value), ...]}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    scalars = {}
    for path in sorted(glob.glob(f"{run_dir}/events.out.tfevents.*")):
        accumulator = EventAccumulator(path, size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return scalars
