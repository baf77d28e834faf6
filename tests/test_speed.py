"""benchmarks/speed.py's side-by-side mode and its SB3 driver: the parts that run without the anchors."""

import os
import subprocess
import sys

import pytest

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


def test_side_by_side_refuses_a_missing_anchor_before_running_anything(capsys):
    with pytest.raises(SystemExit) as stop:
        speed.run_side_by_side(speed.Args(side_by_side="cleanrl"))
    assert stop.value.code == 2
    assert "--side-by-side cleanrl needs --cleanrl" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        speed.run_side_by_side(speed.Args(side_by_side="sb3-pendulum,nothing"))
    assert "choose from cleanrl, sb3-cartpole, sb3-pendulum or all" in capsys.readouterr().err


def test_the_floor_counts_the_work_of_the_run():
    """CartPole defaults for 2,048 steps: 8 iterations of 16 x 16 steps, 2 epochs x 4 mini-batches each."""
    floor = speed.floor_of("ppo_discrete.py", ["--total-timesteps", "2048"])
    assert floor["steps"] == 8 * 16 and floor["updates"] == 8 * 2 * 4
    assert all(floor[key] > 0 for key in ("env", "rollout forward", "updates, eager"))
