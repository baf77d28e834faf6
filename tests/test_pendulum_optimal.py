"""The dynamic-programming optimum of the swing-up pendulum (benchmarks/pendulum_optimal.py).

A coarse grid (61 x 49, 21 controls) keeps the solve to ~0.1 s; the numbers
below were measured on it and the bounds leave a margin.
"""

import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import pendulum_env
from benchmarks import pendulum_optimal
from pendulum_env import PendulumConfig, pendulum_reward, pendulum_step, wrap_angle

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "benchmarks", "pendulum_optimal.py")


@pytest.fixture(scope="module")
def solution():
    return pendulum_optimal.solve(PendulumConfig(), angle_points=61, velocity_points=49, controls=21)


def zero_torque_returns(angle, velocity, config=PendulumConfig()):
    """The baseline: the motor off for the whole episode."""
    returns = np.zeros(len(angle))
    for _ in range(config.episode_steps):
        returns += pendulum_reward(angle, velocity, 0.0, config)
        angle, velocity = pendulum_step(angle, velocity, 0.0, config)
    return returns


def test_solution_shapes_and_controls(solution):
    assert solution.values.shape == (201, 61, 49)
    assert solution.steps == 200
    assert solution.actions[[0, 10, 20]].tolist() == [0.0, 0.5, 1.0]
    assert solution.controls[[0, 10, 20]].tolist() == [-1.0, 0.0, 1.0]  # control = 2u - 1
    assert solution.grid.angles[30] == 0.0  # upright is a grid point
    assert solution.grid.angles.min() >= -np.pi and solution.grid.angles.max() < np.pi


def test_one_step_values_are_the_reward_with_the_motor_off(solution):
    # With one step left the best control is 0 (it only costs), so values[1] is
    # -(angle^2 + 0.1 velocity^2): upright at -8 rad/s gives -6.4.
    assert solution.values[1][30, 0] == pytest.approx(-6.4)
    assert solution.values[1][30, 24] == 0.0
    angle, velocity = np.meshgrid(solution.grid.angles, solution.grid.velocities, indexing="ij")
    np.testing.assert_allclose(solution.values[1], -(angle**2 + 0.1 * velocity**2), atol=1e-12)
    assert np.all(solution.values[0] == 0.0)


def test_interpolation_is_periodic_in_angle_and_clipped_in_velocity(solution):
    grid = solution.grid
    table = np.random.default_rng(0).normal(size=(61, 49))
    angle = np.array([0.3, -2.0, 3.1])
    velocity = np.array([1.234, -7.9, 0.0])
    inside = grid.interpolate(table, angle, velocity)
    np.testing.assert_allclose(grid.interpolate(table, angle + 2 * np.pi, velocity), inside, atol=1e-9)
    np.testing.assert_allclose(grid.interpolate(table, angle - 4 * np.pi, velocity), inside, atol=1e-9)
    # Hanging (pi) lies halfway between the last angle point and the first: the seam wraps round.
    assert grid.angles[60] == pytest.approx(np.pi - grid.angle_step / 2)
    assert grid.interpolate(table, np.pi, grid.velocities[7]) == pytest.approx((table[60, 7] + table[0, 7]) / 2)
    assert grid.interpolate(table, 0.0, 8.0) == pytest.approx(table[30, 48])
    assert grid.interpolate(table, 0.0, 99.0) == pytest.approx(table[30, 48])  # beyond max_speed: the edge
    # Halfway between two grid points in both directions: the mean of the four corners.
    middle = grid.interpolate(table, grid.angles[5] + grid.angle_step / 2, grid.velocities[7] + grid.velocity_step / 2)
    assert middle == pytest.approx(table[5:7, 7:9].mean())
    # Bilinear interpolation reproduces a function linear in velocity exactly.
    linear = np.broadcast_to(grid.velocities, (61, 49))
    assert grid.interpolate(linear, 1.0, 1.234) == pytest.approx(1.234)


def test_swings_up_from_hanging_at_rest(solution):
    episodes = pendulum_optimal.simulate(solution, [np.pi], [0.0])
    # Measured -345.4 on this grid (-301.9 on the default 301 x 241); the motor
    # off would stay down and score 200 * -pi^2 = -1973.9.
    assert episodes.returns[0] > -360.0
    assert abs(wrap_angle(episodes.final_angle[0])) < 0.01  # measured 0.0008
    assert abs(episodes.final_velocity[0]) < 0.05  # measured 0.015
    # Hanging is the same state whichever side it is reached from.
    assert pendulum_optimal.simulate(solution, [-np.pi], [0.0]).returns[0] == pytest.approx(episodes.returns[0])


def test_upright_at_rest_stays_there_for_free(solution):
    assert pendulum_optimal.simulate(solution, [0.0], [0.0]).returns[0] == 0.0
    near = pendulum_optimal.simulate(solution, [0.05, -0.05, 0.1], [0.0, 0.0, 0.0])
    # Measured -0.037, -0.037, -0.093: a small tilt is caught at once.
    assert np.all(near.returns > -0.15)
    assert np.all(np.abs(near.final_angle) < 0.01)


def test_any_controller_runs_and_is_timed_until_caught_upright(solution):
    """The motor off: balanced at the top it is upright from step 0; hanging, it never is (the episode's length)
    and pays pi^2 a step. Swung up by the DP controller, it is caught once and held from then on."""
    motor_off = pendulum_optimal.simulate(solution, [0.0, np.pi], [0.0, 0.0],
                                          controller=lambda angle, velocity: np.full(len(angle), 0.5))
    assert list(motor_off.upright_from) == [0, 200] and (motor_off.actions == 0.5).all()
    np.testing.assert_allclose(motor_off.returns, [0.0, -200 * np.pi**2], rtol=1e-9)
    swung = pendulum_optimal.simulate(solution, [np.pi], [0.0])
    assert 20 < swung.upright_from[0] < 100  # measured 53 (2.65 s)


def test_beats_the_motor_off_and_ends_upright(solution):
    starts = pendulum_optimal.starts_for_seeds(range(100))
    episodes = pendulum_optimal.simulate(solution, *starts)
    # Measured on env seeds 0..99: DP -111.1, motor off -1067.8.
    assert -125.0 < episodes.returns.mean() < -100.0
    assert episodes.returns.mean() > zero_torque_returns(*starts).mean() + 900.0
    assert np.all(np.abs(wrap_angle(episodes.final_angle)) < 0.01)  # every one swung up and held
    # The grid's own estimate of the return is close to what the episodes give (measured -113.2).
    assert solution.value(200, *starts).mean() == pytest.approx(episodes.returns.mean(), abs=5.0)


def test_returns_are_what_the_environment_gives(solution):
    seeds = [3, 17, 2024, 1_000_105]
    starts = pendulum_optimal.starts_for_seeds(seeds)
    episodes = pendulum_optimal.simulate(solution, *starts)
    env = pendulum_env.SwingUpPendulumVectorEnv(num_envs=len(seeds))
    env.reset(seed=seeds)
    returns = np.zeros(len(seeds))
    for t in range(200):
        _, reward, terminated, truncated, _ = env.step(episodes.actions[:, t : t + 1])
        returns += reward
    assert truncated.all() and not terminated.any()
    np.testing.assert_allclose(returns, episodes.returns, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(pendulum_optimal.optimal_returns(solution, starts), episodes.returns)


def test_starts_are_the_environments_own():
    seeds = [0, 7, 123_456, 1_000_100]
    angle, velocity = pendulum_optimal.starts_for_seeds(seeds)
    for k, seed in enumerate(seeds):
        env = pendulum_env.SwingUpPendulumEnv()
        env.reset(seed=seed)
        assert (angle[k], velocity[k]) == (env.angle, env.velocity)
    # The physics' max_speed bounds the drawn velocity.
    _, slow = pendulum_optimal.starts_for_seeds(range(50), PendulumConfig(max_speed=1.0))
    assert np.abs(slow).max() <= 1.0


def test_custom_physics_gets_its_own_optimum():
    config = PendulumConfig(length=1.0, motor=4.0, timeout=5.0)
    solution = pendulum_optimal.solve(config, angle_points=31, velocity_points=25, controls=3)
    assert solution.values.shape == (101, 31, 25)  # 5 s / 0.05 s steps
    assert pendulum_optimal.simulate(solution, [0.0], [0.0]).returns[0] == 0.0


@pytest.mark.parametrize("grid, message", [((2, 49, 21), "angle_points=2"), ((61, 1, 21), "velocity_points=1"),
                                           ((61, 49, 20), "controls=20"), ((61, 49, 1), "controls=1")])
def test_refuses_grids_it_cannot_use(grid, message):
    with pytest.raises(ValueError, match=message):
        pendulum_optimal.solve(PendulumConfig(), *grid)


def test_command_line_scores_common_starts_and_run_seeds(monkeypatch, capsys):
    # A stand-in for ppo_continuous_beta, so the test needs no torch: each run
    # seed's evaluation env seeds as the PPO script draws them.
    stand_in = types.ModuleType("ppo_continuous_beta")
    stand_in.env_seeds = lambda seed, count, stream: [1_000_000 + seed * count + i for i in range(count)]
    monkeypatch.setitem(sys.modules, "ppo_continuous_beta", stand_in)
    pendulum_optimal.main(["--grid", "61", "49", "--common", "20", "--run-seeds", "1", "2", "--episodes", "10"])
    out = capsys.readouterr().out
    assert "61 angles x 49 velocities, 21 controls, 200-step horizon" in out
    assert "solved in" in out
    assert "common starts (env seeds 0..19):" in out and "over 20 episodes" in out
    assert "run seed 1's evaluation starts:" in out and "run seed 2's evaluation starts:" in out


@pytest.mark.parametrize("argv, message", [
    (["--env-kwargs", "lenght=1.0"], "unknown key 'lenght'"),
    (["--env-kwargs", "length"], "write KEY=VALUE"),
    (["--env-kwargs", "length=long"], "is not a Python literal"),
    (["--env-kwargs", "length=-1.0"], "length=-1.0 is invalid"),
    (["--controls", "4"], "controls=4"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        pendulum_optimal.main(["--grid", "31", "25", "--common", "5", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_runs_as_a_script_without_torch():
    # From the repository root, as the README tells users to run it.
    result = subprocess.run(
        [sys.executable, SCRIPT, "--grid", "31", "25", "--controls", "3", "--common", "5",
         "--env-kwargs", "length=1.0", "motor=4.0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "length=1.0" in result.stdout and "motor=4.0" in result.stdout
    assert "common starts (env seeds 0..4):" in result.stdout
    imports = subprocess.run(
        [sys.executable, "-c", "import sys; from benchmarks import pendulum_optimal; print('torch' in sys.modules)"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert imports.stdout.strip() == "False", imports.stderr


def test_a_physics_variant_reaches_the_training_env_the_optimum_and_the_evaluation():
    """One set of --env-kwargs (a long pendulum with a weak motor) goes everywhere a variant's row needs it: into
    the run's saved settings, into the DP's physics, and into the evaluation, whose returns are those of the
    variant's own environment from the run's evaluation starts (and not those of the default physics)."""
    import ppo_continuous_beta as beta
    variant = ("length=1.0", "motor=4.0")
    result = beta.train(beta.Args(env_kwargs=variant, total_timesteps=4096, num_envs=16, num_steps=32,
                                  eval_episodes=4, save_model=True, seed=3))
    saved = beta.load_checkpoint(f"{result['run_dir']}/agent.pt")
    assert saved["args"]["env_kwargs"] == variant
    config = pendulum_optimal.parse_env_kwargs(variant)
    assert (config.length, config.motor) == (1.0, 4.0)
    # the evaluation starts of run seed 3, drawn by the variant's env, scored by the policy in that env
    starts = pendulum_optimal.starts_for_seeds(beta.env_seeds(3, 4, stream=(1,)), config)
    policy = beta.load_policy(saved)
    returns = []
    for angle, velocity in zip(*starts):
        env = pendulum_env.SwingUpPendulumEnv(length=1.0, motor=4.0)
        obs, _ = env.reset(options={"angle": angle, "velocity": velocity})
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs[None])[0])
            total, done = total + reward, terminated or truncated
        returns.append(total)
    np.testing.assert_allclose(result["eval_returns"], returns, rtol=1e-6)
    default_physics = beta.evaluate(policy, beta.Args(eval_episodes=4, seed=3))
    assert not np.allclose(default_physics, returns)
    # and the DP scores the same starts under the variant's physics: no better than optimal, no worse than idle
    solution = pendulum_optimal.solve(config, angle_points=61, velocity_points=49, controls=21)
    optimum = pendulum_optimal.optimal_returns(solution, starts)
    assert (optimum >= zero_torque_returns(*starts, config) - 1.0).all()


def test_the_family_table_scores_a_run_against_the_optimum_of_its_own_physics_and_starts(capsys):
    import ppo_continuous_beta as beta
    from benchmarks import swingup_family
    result = beta.train(beta.Args(env_kwargs=("motor=4.0",), total_timesteps=4096, num_envs=16, num_steps=32,
                                  eval_episodes=3, eval_every=4, seed=2, save_model=True))
    swingup_family.main([result["run_dir"]])
    line = capsys.readouterr().out.strip().splitlines()[-1]
    config = pendulum_optimal.parse_env_kwargs(("motor=4.0",))
    starts = pendulum_optimal.starts_for_seeds(beta.env_seeds(2, 3, stream=(1,)), config)
    optimal = pendulum_optimal.simulate(pendulum_optimal.solve(config), *starts)
    optimum, ours = optimal.returns.mean(), result["eval_returns"].mean()
    assert line.startswith("motor=4.0") and "seed 2:" in line
    assert f"optimum {optimum:7.1f}" in line and f"ours {ours:7.1f}" in line
    assert f"gap {100 * (optimum - ours) / -optimum:5.1f}%" in line
    # the agent replayed in its own env: the step from which it stays within 0.3 rad and 1.5 rad/s of the top
    policy, upright_from = beta.load_policy(f"{result['run_dir']}/agent.pt"), []
    for angle, velocity in zip(*starts):
        env = pendulum_env.SwingUpPendulumEnv(motor=4.0)
        env.reset(options={"angle": angle, "velocity": velocity})
        caught = 0
        for step in range(200):
            angle, velocity = env.angle, env.velocity
            caught = caught if abs(wrap_angle(angle)) < 0.3 and abs(velocity) < 1.5 else step + 1
            env.step(policy(pendulum_env.observe(angle, velocity, config)[None])[0])
        upright_from.append(caught)
    late = np.array(upright_from) - optimal.upright_from >= swingup_family.LATE
    assert f"late by 15+ steps: {late.sum()}/3 episodes" in line
    # a barely trained actor's heads are alive everywhere; a beta head biased far below zero is dead everywhere,
    # and with the alpha head too, both are
    assert line.endswith("softplus input < -5: alpha head 0%, beta head 0%, both 0%")
    saved = torch.load(f"{result['run_dir']}/agent.pt", weights_only=True)
    saved["agent"]["beta_head.bias"][:] = -20.0
    torch.save(saved, f"{result['run_dir']}/agent.pt")
    assert swingup_family.dead_heads(result["run_dir"], config).endswith("alpha head 0%, beta head 100%, both 0%")
    saved["agent"]["alpha_head.bias"][:] = -20.0
    torch.save(saved, f"{result['run_dir']}/agent.pt")
    assert swingup_family.dead_heads(result["run_dir"], config).endswith("alpha head 100%, beta head 100%, both 100%")


def test_the_imitation_check_learns_from_whole_dp_episodes_and_the_controllers_own_choices(solution):
    """swingup_imitation's training set: uniform states, then the states of DP episodes step by step, each labelled
    with the action the DP controller picks there with a whole episode to go."""
    from benchmarks import swingup_imitation
    args = swingup_imitation.Args(uniform_states=50, episodes=4)
    angle, velocity, target = swingup_imitation.training_set(solution, args, np.random.default_rng(0))
    assert len(angle) == len(velocity) == len(target) == 50 + 4 * solution.steps
    assert np.all(np.abs(velocity[:50]) <= solution.config.max_speed)
    # the block of step t + 1 is where the DP controller takes the block of step t (simulate's own episodes)
    starts = angle[50:54], velocity[50:54]
    episodes = pendulum_optimal.simulate(solution, *starts)
    for t in (0, 1, solution.steps - 2):
        now, then = slice(50 + 4 * t, 54 + 4 * t), slice(54 + 4 * t, 58 + 4 * t)
        control = pendulum_optimal.action_to_control(episodes.actions[:, t])
        next_angle, next_velocity = pendulum_step(angle[now], velocity[now], control, solution.config)
        np.testing.assert_array_equal(angle[then], next_angle)
        np.testing.assert_array_equal(velocity[then], next_velocity)
    best = pendulum_optimal.greedy_actions(solution, angle, velocity, solution.steps)
    np.testing.assert_array_equal(target, solution.actions[best])
