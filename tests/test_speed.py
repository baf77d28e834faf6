"""benchmarks/speed.py and its SB3 driver: the parts that run without the anchors, and no real timing."""

import os
import subprocess
import sys

import pytest
import tyro

from benchmarks import sb3_driver, speed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rl_zoo_linear_schedules_fall_from_their_value_to_zero():
    learning_rate = sb3_driver.schedule("lin_0.001")
    assert learning_rate(1.0) == pytest.approx(0.001) and learning_rate(0.25) == pytest.approx(0.00025)
    assert learning_rate(0.0) == 0.0
    assert sb3_driver.schedule(0.2) == 0.2  # plain numbers stay constant


def test_the_sb3_driver_without_stable_baselines3_is_one_line(tmp_path):
    pytest.importorskip("torch")
    code = "import sys; sys.modules['stable_baselines3'] = None; sys.argv[0] = 'sb3_driver.py'; " \
           f"sys.path.insert(0, {os.path.join(ROOT, 'benchmarks')!r}); import sb3_driver; sb3_driver.main([])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("sb3_driver.py: error: stable-baselines3 is not installed in this Python")


def test_readme_command_parses_and_side_by_side_is_required(capsys):
    args = tyro.cli(speed.Args, args=["--side-by-side", "all", "--pairs", "3", "--cleanrl", "CLEANRL/cleanrl/ppo.py",
                                      "--cleanrl-python", "CLEANRL_VENV/bin/python",
                                      "--sb3-python", "SB3_VENV/bin/python"])
    assert (args.side_by_side, args.pairs, args.floor) == ("all", 3, True)
    assert (args.cleanrl, args.cleanrl_python, args.sb3_python) == ("CLEANRL/cleanrl/ppo.py",
                                                                     "CLEANRL_VENV/bin/python", "SB3_VENV/bin/python")
    assert tyro.cli(speed.Args, args=["--side-by-side", "cleanrl", "--no-floor"]).floor is False
    with pytest.raises(SystemExit) as stop:
        tyro.cli(speed.Args, args=["--pairs", "3"])
    assert stop.value.code == 2
    assert "--side-by-side" in capsys.readouterr().err


def test_side_by_side_refuses_a_missing_anchor_before_running_anything(capsys):
    with pytest.raises(SystemExit) as stop:
        speed.run_side_by_side(speed.Args(side_by_side="cleanrl"))
    assert stop.value.code == 2
    assert "--side-by-side cleanrl needs --cleanrl" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.run_side_by_side(speed.Args(side_by_side="cleanrl,sb3-pendulum", cleanrl="ppo.py",
                                          cleanrl_python="python"))
    assert "need --sb3-python" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.run_side_by_side(speed.Args(side_by_side="sb3-pendulum,nothing"))
    assert "choose from cleanrl, sb3-cartpole, sb3-pendulum or all" in capsys.readouterr().err


def test_pairs_alternate_and_the_ratio_is_the_median_over_pairs(monkeypatch, capsys):
    """Fake timings: ours 10, 11, 12, 13 s; the anchor 30, 22, 48 s and a failure, so the ratios of the
    pairs where both ran are 3, 2 and 4: median 3."""
    walls = {"ours": [10.0, 11.0, 12.0, 13.0], "anchor": [30.0, 22.0, 48.0, None]}
    order = []

    def fake_process(command, env):
        who = "ours" if command[1].endswith("ppo_discrete.py") else "anchor"
        seed = int(command[command.index("--seed") + 1])
        order.append((seed, who))
        assert who == "anchor" or env["OMP_NUM_THREADS"] == "1"
        wall = walls[who][seed - 1]
        return speed.Run(False, 1.0, problem="exit 1") if wall is None else speed.Run(True, wall, 500.0)

    monkeypatch.setattr(speed, "timed_process", fake_process)
    monkeypatch.setattr(speed.subprocess, "run", lambda *args, **kwargs: None)  # no warm-up process
    args = speed.Args(side_by_side="sb3-cartpole", pairs=4, sb3_python="SB3_VENV/bin/python", floor=False)
    result = speed.run_side_by_side(args)["sb3-cartpole"]
    assert order == [(1, "ours"), (1, "anchor"), (2, "anchor"), (2, "ours"),
                     (3, "ours"), (3, "anchor"), (4, "anchor"), (4, "ours")]
    assert result["ratios"] == [3.0, 2.0, 4.0]
    out = capsys.readouterr().out
    assert "pair 4 anchor: FAILED: exit 1" in out
    assert "ratio 2.00x / 3.00x / 4.00x" in out
    assert "ours 10.0 s / 11.5 s / 13.0 s" in out and "anchor 22.0 s / 30.0 s / 48.0 s" in out


@pytest.mark.parametrize("script, argv, steps, updates", [
    # CartPole defaults for 2,048 steps: 8 iterations of 16 x 16 steps, 2 epochs x 4 mini-batches each
    ("ppo_discrete.py", ["--total-timesteps", "2048"], 8 * 16, 8 * 2 * 4),
    # 2 iterations of 8 x 128 steps, 10 epochs x 2 mini-batches each
    ("ppo_continuous_beta.py", ["--env-id", "Pendulum-v1", "--total-timesteps", "2048", "--num-envs", "8",
                                "--num-steps", "128", "--num-minibatches", "2"], 2 * 128, 2 * 10 * 2),
])
def test_the_floor_counts_the_work_of_the_run(script, argv, steps, updates):
    floor = speed.floor_of(script, argv, compiled=False)
    assert (floor["steps"], floor["updates"]) == (steps, updates)
    assert all(floor[key] > 0 for key in ("env", "rollout forward", "updates, eager"))
    assert "updates, compiled" not in floor
