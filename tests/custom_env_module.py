"""A user's own environments, registered on import, for `--env-id tests.custom_env_module:CustomDiscrete-v0`
(Gymnasium's module:id form: it imports the module, which registers the ids, then makes the environment)."""

import gymnasium as gym
import numpy as np


class CustomEnv(gym.Env):
    """Observation: the step count in the episode, scaled to [0, 1]; reward 1 for action 0 (discrete) or for
    actions near the box's low end. Cut after 10 steps by the registered time limit."""

    def __init__(self, action="discrete"):
        self.observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2) if action == "discrete" else gym.spaces.Box(-1.0, 1.0, (1,))
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.steps += 1
        reward = float(action == 0) if self.action_space.shape == () else float(-np.asarray(action)[0])
        return np.array([self.steps / 10], np.float32), reward, False, False, {}


gym.register("CustomDiscrete-v0", entry_point=CustomEnv, max_episode_steps=10)
gym.register("CustomBox-v0", entry_point=CustomEnv, max_episode_steps=10, kwargs={"action": "box"})
