"""Small environments and readers shared by the tests."""

import glob

import gymnasium as gym
import numpy as np


class ConstantRewardEnv(gym.Env):
    """Observation [1], reward 1 every step, never terminates: its value is 1 / (1 - gamma).

    `observation="sequence"` gives a space that cannot be flattened, `"image"`
    an image; `action="multidiscrete"`, `"box"` or `"unbounded"` an action space of another kind,
    to test what the scripts refuse; `reward` replaces the reward (e.g. NaN).
    """

    def __init__(self, observation="box", action="discrete", reward=1.0):
        box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.observation_space = {"box": box, "sequence": gym.spaces.Sequence(box),
                                  "image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)}[observation]
        self.action_space = {"discrete": gym.spaces.Discrete(2),
                             "multidiscrete": gym.spaces.MultiDiscrete([2, 2]),
                             "box": gym.spaces.Box(0.0, 1.0, (1,), np.float32),
                             "unbounded": gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)}[action]
        self.reward = reward

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation(), {}

    def observation(self):
        if isinstance(self.observation_space, gym.spaces.Box):
            return np.ones(self.observation_space.shape, self.observation_space.dtype)
        return (np.ones(1, np.float32),)

    def step(self, action):
        return self.observation(), self.reward, False, False, {}


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


def refused(train, args, capsys) -> str:
    """Run `train(args)`, expect the one-line refusal with exit status 2, return the line."""
    import pytest
    with pytest.raises(SystemExit) as stop:
        train(args)
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message
    return message


class BoundedActionEnv(ConstantRewardEnv):
    """Two action dimensions with asymmetric bounds [-2, 1] x [0, 5]; records every action it gets."""

    received = []

    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))

    def step(self, action):
        BoundedActionEnv.received.append(np.array(action))
        return super().step(action)


class NaNRewardEnv(ConstantRewardEnv):
    """Pays NaN after `nan_after` steps, the kind of bug that should stop training at once."""

    def __init__(self, nan_after=3, **kwargs):
        super().__init__(**kwargs)
        self.nan_after = nan_after

    def reset(self, *, seed=None, options=None):
        self.steps = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, (float("nan") if self.steps > self.nan_after else reward), terminated, truncated, info


class SeedRecordingEnv(ConstantRewardEnv):
    """Records the seed of every reset that sets one, to check which starts a script draws."""

    seeds = []

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            SeedRecordingEnv.seeds.append(seed)
        return super().reset(seed=seed, options=options)


class ShiftedActionEnv(ConstantRewardEnv):
    """Actions are Discrete(2, start=5), as some environments number them; records every action it gets."""

    received = []

    def __init__(self):
        super().__init__()
        self.action_space = gym.spaces.Discrete(2, start=5)

    def step(self, action):
        ShiftedActionEnv.received.append(int(action))
        assert self.action_space.contains(action), f"{action} is not an action of {self.action_space}"
        return super().step(action)
