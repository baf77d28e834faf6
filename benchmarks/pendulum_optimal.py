"""The swing-up pendulum's optimum by dynamic programming: the reference PPO is measured against.

`SwingUpPendulum-v0` (pendulum_env.py) is small enough to solve: its state is
two numbers, angle and velocity. Value iteration on a grid of them gives a
controller that is optimal up to the grid's resolution, and its mean episodic
return is "the DP optimum" the README compares PPO's returns with.

How:

1. Grid. Angle is periodic in [-pi, pi) with `angle_points` equally spaced
   points, one of them exactly 0 (upright), so upright at rest is a grid state
   and a fixed point of the grid model. Velocity has `velocity_points` from
   -max_speed to max_speed, ends included. Controls are `controls` equally
   spaced actions u in [0, 1] (odd, so u = 0.5, motor off, is one of them),
   mapped to the motor by the environment's own rule, control = 2u - 1.
2. Finite-horizon value iteration, as many stages as the episode has steps
   (round(timeout / dt) = 200 by default): values[k] is the best sum of
   undiscounted rewards over k remaining steps,
       values[k](s) = max_u reward(s, u) + values[k - 1](step(s, u)),  values[0] = 0,
   with reward and step the environment's `pendulum_reward` and
   `pendulum_step`, and values[k - 1] read between grid points by bilinear
   interpolation (periodic in angle, clipped in velocity).
   A finite horizon, not a discount: the episodes are 200 undiscounted steps,
   and this is exactly that problem on the grid. Discounted (infinite-horizon)
   value iteration on the same grid, its greedy controller scored on the same
   200-step episodes, does no better: on the 1,000 common starts gamma 0.98
   gives -114.79, 0.99 -113.34, 0.995 -113.06, 0.999 -112.95, the finite
   horizon -112.94.
3. Controller. In a real (continuous) state with k steps left it picks the
   control maximizing reward + values[k - 1](next state), one step of
   lookahead through the same interpolation, and is simulated with the
   environment's exact physics for the whole episode. The return reported is
   the undiscounted sum of the environment's rewards, so it is a real
   episode's return, not the grid's estimate of one; stepping
   `SwingUpPendulumVectorEnv` with the controller's actions gives the same
   numbers (tests/test_pendulum_optimal.py checks it).

Measured with the defaults (grid 301 x 241, 21 controls, default physics) on
this 2-core machine, one core: solving takes 4-7 s (~25 ms per stage), peak
memory ~340 MB; simulating 1,000 episodes takes ~0.5 s.

- Common starts, env seeds 0..999: -112.94 +- 56.77. The earlier, unpublished
  solve reported -111.0 on "1,000 common starts" whose seeds were not
  recorded. A mean over 1,000 random starts has a standard error of ~1.8
  (56.8 / sqrt(1000)): env seeds 100000..100999 give -111.09, 10000..10999
  -110.41. Over 10,000 starts (env seeds 0..9999) this controller scores
  -111.88.
- Evaluation starts of PPO run seeds 1-5, 100 episodes each (drawn from
  numpy SeedSequence streams, `env_seeds(seed, n, stream=(1,))` of ppo_continuous_beta.py):
  -112.4, -120.8, -112.3, -117.5, -116.4. (With the scripts' earlier
  evaluation seeds, 1,000,000 + s x 100 + i, they were -111.5, -100.0,
  -116.3, -108.5, -108.3, where the earlier solve had -112.2, -100.5, -116.4,
  -108.9, -108.6.)
- Controls, on the common starts: 3 levels (-1, 0, 1) -113.16, 5 -113.01,
  11 -112.95, 21 -112.94, 41 -112.94: beyond 11 levels finer control is
  worth nothing measurable.
- Grid, 21 controls, common starts: 61 x 49 -114.52 (0.1 s), 151 x 121
  -113.44 (1 s), 301 x 241 -112.94, 601 x 481 -112.75 (27 s), 1201 x 961
  -112.61 (152 s, 4.7 GB). The default is within ~0.3-0.4 of the fine-grid
  limit, about 0.3%.
- From hanging at rest (angle pi, velocity 0): -301.9, the grid predicting
  -302.3.

    python benchmarks/pendulum_optimal.py                        # 1,000 common starts
    python benchmarks/pendulum_optimal.py --run-seeds 1 2 3 4 5 --episodes 100
    python benchmarks/pendulum_optimal.py --env-kwargs length=1.0 motor=4.0

The module needs numpy and pendulum_env.py only; `--run-seeds` also imports
ppo_continuous_beta.py (and with it torch) for its `env_seeds`.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

# Run as a script, Python puts benchmarks/ on the path, not the repository root
# that holds pendulum_env.py and ppo_continuous_beta.py.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import pendulum_env  # noqa: E402  (after the path fix above)
from pendulum_env import PendulumConfig, action_to_control, pendulum_reward, pendulum_step  # noqa: E402

COMMON_STARTS = 1000  # env seeds 0..999: the common set every agent can be scored on


# --------------------------------------------------------------------------- #
# The grid and interpolation on it
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Grid:
    """Grid points of angle (periodic) and velocity; tables on it have shape (angle_points, velocity_points)."""

    angle_points: int
    velocity_points: int
    max_speed: float

    @property
    def angle_step(self) -> float:
        return 2.0 * np.pi / self.angle_points

    @property
    def velocity_step(self) -> float:
        return 2.0 * self.max_speed / (self.velocity_points - 1)

    @property
    def angles(self) -> np.ndarray:
        """Equally spaced angles in [-pi, pi), index angle_points // 2 being exactly 0 (upright)."""
        return self.angle_step * (np.arange(self.angle_points) - self.angle_points // 2)

    @property
    def velocities(self) -> np.ndarray:
        return np.linspace(-self.max_speed, self.max_speed, self.velocity_points)

    def stencil(self, angle, velocity):
        """The four grid points around each state, as flat table indices, and their bilinear weights.

        Both have shape (4, *states' shape); the four weights of a state sum to 1.
        Angle wraps round (any real angle is fine: the physics never wraps it);
        velocity is clipped to the grid.
        """
        a_count, v_count = self.angle_points, self.velocity_points
        # Position in units of grid steps, 0 at index 0; mod makes it periodic.
        a = np.mod(np.asarray(angle) / self.angle_step + a_count // 2, a_count)
        i0 = np.floor(a).astype(np.intp)
        wa = a - i0
        i0 %= a_count  # a can round up to exactly a_count
        i1 = (i0 + 1) % a_count

        v = (np.clip(velocity, -self.max_speed, self.max_speed) + self.max_speed) / self.velocity_step
        j0 = np.clip(np.floor(v).astype(np.intp), 0, v_count - 2)  # max_speed itself uses the last cell
        wv = np.clip(v - j0, 0.0, 1.0)

        index = np.stack([i0 * v_count + j0, i0 * v_count + j0 + 1, i1 * v_count + j0, i1 * v_count + j0 + 1])
        weight = np.stack([(1 - wa) * (1 - wv), (1 - wa) * wv, wa * (1 - wv), wa * wv])
        return index, weight

    def interpolate(self, table: np.ndarray, angle, velocity) -> np.ndarray:
        """Bilinear interpolation of a table on the grid at the given states."""
        index, weight = self.stencil(angle, velocity)
        return (weight * table.ravel()[index]).sum(axis=0)


# --------------------------------------------------------------------------- #
# Value iteration
# --------------------------------------------------------------------------- #
@dataclass
class Solution:
    """What `solve` found: the grid, the controls and one value table per number of steps left."""

    config: PendulumConfig
    grid: Grid
    actions: np.ndarray
    """the environment actions u in [0, 1] the controller chooses from"""
    controls: np.ndarray
    """the motor controls they give, 2u - 1"""
    values: np.ndarray
    """values[k]: best return over k remaining steps from each grid state, shape (steps + 1, angles, velocities)"""
    solve_seconds: float

    @property
    def steps(self) -> int:
        return self.values.shape[0] - 1

    def value(self, steps_left: int, angle, velocity) -> np.ndarray:
        """The grid's estimate of the best return over `steps_left` steps from these states."""
        return self.grid.interpolate(self.values[steps_left], angle, velocity)


def solve(config: PendulumConfig | None = None, angle_points: int = 301, velocity_points: int = 241,
          controls: int = 21) -> Solution:
    """Finite-horizon value iteration over one episode's steps on an angle x velocity grid.

    `controls` equally spaced actions u in [0, 1] (odd, >= 3, so that -1, 0 and
    1 are among the motor controls). Returns a `Solution` whose value tables
    drive `greedy_actions` and `simulate`.
    """
    config = config or PendulumConfig()
    check_grid(angle_points, velocity_points, controls)
    started = time.perf_counter()
    grid = Grid(angle_points, velocity_points, config.max_speed)
    actions = np.linspace(0.0, 1.0, controls)
    motor = action_to_control(actions)

    # Every control (axis 0) from every grid state (axis 1): the reward, and where
    # the pendulum lands as interpolation indices and weights. Neither changes
    # from one stage to the next, so both are computed once.
    angle, velocity = (x.ravel() for x in np.meshgrid(grid.angles, grid.velocities, indexing="ij"))
    angle, velocity, control = angle[None, :], velocity[None, :], motor[:, None]
    rewards = pendulum_reward(angle, velocity, control, config)  # (controls, states)
    index, weight = grid.stencil(*pendulum_step(angle, velocity, control, config))  # (4, controls, states)

    values = np.zeros((config.episode_steps + 1, angle_points * velocity_points))
    for steps_left in range(1, config.episode_steps + 1):
        later = values[steps_left - 1]
        q = rewards + (weight * later[index]).sum(axis=0)
        values[steps_left] = q.max(axis=0)
    values = values.reshape(-1, angle_points, velocity_points)
    return Solution(config, grid, actions, motor, values, time.perf_counter() - started)


def check_grid(angle_points: int, velocity_points: int, controls: int):
    """Refuse grids and control sets the solver cannot use, with the fix in the message."""
    if angle_points < 3:
        raise ValueError(f"angle_points={angle_points}: pass at least 3")
    if velocity_points < 2:
        raise ValueError(f"velocity_points={velocity_points}: pass at least 2 (the grid includes -max_speed and max_speed)")
    if controls < 3 or controls % 2 == 0:
        raise ValueError(f"controls={controls}: pass an odd number >= 3, so that motor off (u = 0.5) is one of them")


# --------------------------------------------------------------------------- #
# The controller, simulated with the environment's physics
# --------------------------------------------------------------------------- #
def greedy_actions(solution: Solution, angle, velocity, steps_left: int) -> np.ndarray:
    """Indices into `solution.actions` of the best control in each state with `steps_left` steps to go.

    One step of lookahead: the real reward of each control plus the grid value
    of the real next state over the steps that remain after it.
    """
    angle, velocity = np.asarray(angle)[:, None], np.asarray(velocity)[:, None]
    control = solution.controls[None, :]
    q = pendulum_reward(angle, velocity, control, solution.config)
    q = q + solution.value(steps_left - 1, *pendulum_step(angle, velocity, control, solution.config))
    return q.argmax(axis=1)


UPRIGHT = 0.3, 1.5  # within 0.3 rad of the top and 1.5 rad/s of rest: caught, balancing


@dataclass
class Episodes:
    """Whole episodes of a controller, one row per start."""

    returns: np.ndarray
    """undiscounted sum of the environment's rewards"""
    actions: np.ndarray
    """the actions u in [0, 1] taken, shape (episodes, steps)"""
    angles: np.ndarray
    """the angle before each step, shape (episodes, steps)"""
    velocities: np.ndarray
    """the velocity before each step, shape (episodes, steps)"""
    final_angle: np.ndarray
    final_velocity: np.ndarray
    upright_from: np.ndarray
    """the step from which the pendulum stays upright (UPRIGHT) to the end; the episode's length if never"""


def simulate(solution: Solution, angle, velocity, controller=None) -> Episodes:
    """Run the greedy controller, or `controller(angle, velocity) -> actions u`, from each start for a whole episode.

    Reward then step, with the same functions and arithmetic as the
    environment, so the returns are those the environment would give.
    """
    angle = np.array(angle, dtype=np.float64).reshape(-1)
    velocity = np.array(velocity, dtype=np.float64).reshape(-1)
    returns, upright_from = np.zeros(len(angle)), np.zeros(len(angle), dtype=int)
    actions, angles, velocities = (np.zeros((len(angle), solution.steps)) for _ in range(3))
    for t in range(solution.steps):
        angles[:, t], velocities[:, t] = angle, velocity
        if controller is None:
            actions[:, t] = solution.actions[greedy_actions(solution, angle, velocity, solution.steps - t)]
        else:
            actions[:, t] = controller(angle, velocity)
        upright = (np.abs(pendulum_env.wrap_angle(angle)) < UPRIGHT[0]) & (np.abs(velocity) < UPRIGHT[1])
        upright_from = np.where(upright, upright_from, t + 1)
        control = action_to_control(actions[:, t])
        returns += pendulum_reward(angle, velocity, control, solution.config)
        angle, velocity = pendulum_step(angle, velocity, control, solution.config)
    return Episodes(returns, actions, angles, velocities, angle, velocity, upright_from)


def optimal_returns(solution: Solution, starts) -> np.ndarray:
    """Episodic returns of the DP controller from `starts` = (angles, velocities), one per episode."""
    angle, velocity = starts
    return simulate(solution, angle, velocity).returns


def starts_for_seeds(seeds, config: PendulumConfig | None = None):
    """(angles, velocities) the environment draws when reset with each of these seeds.

    Drawn by the environment itself, so they are exactly the starts of
    `SwingUpPendulumEnv().reset(seed=s)` and of a vector env reset with these seeds.
    """
    seeds = [int(seed) for seed in seeds]
    config = config or PendulumConfig()
    env = pendulum_env.SwingUpPendulumVectorEnv(num_envs=len(seeds), **dataclasses.asdict(config))
    env.reset(seed=seeds)
    starts = env.angle.copy(), env.velocity.copy()
    env.close()
    return starts


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def exit_with_error(message: str):
    """Stop with a one-line message and exit status 2, as argparse does for bad arguments."""
    print(f"pendulum_optimal.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_env_kwargs(pairs) -> PendulumConfig:
    """`KEY=VALUE` strings (values as Python literals) -> the pendulum's config, or a one-line error."""
    known = [field.name for field in dataclasses.fields(PendulumConfig)]
    kwargs = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            exit_with_error(f"--env-kwargs {pair!r}: write KEY=VALUE, e.g. length=1.0")
        if key not in known:
            exit_with_error(f"--env-kwargs: unknown key {key!r}; the pendulum's keys are {', '.join(known)}")
        try:
            kwargs[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            exit_with_error(f"--env-kwargs {pair!r}: {text!r} is not a Python literal; pass a number, e.g. {key}=1.0")
    try:
        return PendulumConfig(**kwargs)
    except (ValueError, TypeError) as error:
        exit_with_error(f"--env-kwargs: {error}")


def load_evaluation_seeds():
    """The evaluation env seeds of a PPO run seed, as ppo_continuous_beta draws them (imported only when needed: it
    imports torch)."""
    try:
        from ppo_continuous_beta import env_seeds
    except ImportError as error:
        exit_with_error(f"--run-seeds needs env_seeds from ppo_continuous_beta.py ({error})")
    return lambda seed, episodes: env_seeds(seed, episodes, stream=(1,))


def report(label: str, returns: np.ndarray):
    print(f"{label}: {returns.mean():.2f} +- {returns.std():.2f} over {len(returns)} episodes")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Mean episodic return of the dynamic-programming optimal controller of SwingUpPendulum-v0 "
        "(finite-horizon value iteration on an angle x velocity grid). Without --common or --run-seeds "
        f"it scores the {COMMON_STARTS} common starts."
    )
    parser.add_argument("--grid", nargs=2, type=int, default=[301, 241], metavar=("ANGLES", "VELOCITIES"),
                        help="grid points of angle (periodic) and velocity (default: 301 241)")
    parser.add_argument("--controls", type=int, default=21, metavar="N",
                        help="equally spaced actions in [0, 1], odd (default: 21)")
    parser.add_argument("--common", type=int, metavar="N",
                        help="score the starts of env seeds 0..N-1, the set common to every run")
    parser.add_argument("--run-seeds", type=int, nargs="+", metavar="SEED",
                        help="score each PPO run seed's own evaluation starts (ppo_continuous_beta.env_seeds, evaluation stream)")
    parser.add_argument("--episodes", type=int, default=100, metavar="N",
                        help="evaluation episodes per run seed, for --run-seeds (default: 100)")
    parser.add_argument("--env-kwargs", nargs="+", default=[], metavar="KEY=VALUE",
                        help="the pendulum's physics, e.g. length=1.0 motor=4.0 (values are Python literals)")
    args = parser.parse_args(argv)
    for name in ("common", "episodes"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}: pass a number of episodes >= 1")
    config = parse_env_kwargs(args.env_kwargs)
    if args.common is None and args.run_seeds is None:
        args.common = COMMON_STARTS
    evaluation_seeds = load_evaluation_seeds() if args.run_seeds else None

    angle_points, velocity_points = args.grid
    try:
        check_grid(angle_points, velocity_points, args.controls)
    except ValueError as error:
        exit_with_error(str(error))
    print(f"SwingUpPendulum-v0 {config}")
    print(f"value iteration: {angle_points} angles x {velocity_points} velocities, {args.controls} controls, "
          f"{config.episode_steps}-step horizon")
    solution = solve(config, angle_points, velocity_points, args.controls)
    print(f"solved in {solution.solve_seconds:.1f} s")

    if args.common is not None:
        starts = starts_for_seeds(range(args.common), config)
        report(f"common starts (env seeds 0..{args.common - 1})", optimal_returns(solution, starts))
    for seed in args.run_seeds or []:
        starts = starts_for_seeds(evaluation_seeds(seed, args.episodes), config)
        report(f"run seed {seed}'s evaluation starts", optimal_returns(solution, starts))


if __name__ == "__main__":
    main()
