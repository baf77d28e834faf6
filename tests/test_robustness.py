"""Both scripts: interrupts keep a resumable checkpoint, loads are safe, numerical blow-ups stop loudly."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import ppo_continuous_beta
import ppo_discrete
from tests.helpers import NaNRewardEnv, read_scalars, refused, register_once

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
register_once("NaNReward-v0", NaNRewardEnv, max_episode_steps=50)
register_once("NaNRewardBox-v0", NaNRewardEnv, max_episode_steps=50, kwargs={"action": "box"})
register_once("LateNaNReward-v0", NaNRewardEnv, kwargs={"nan_after": 100})
register_once("LateNaNRewardBox-v0", NaNRewardEnv, kwargs={"nan_after": 100, "action": "box"})

CASES = {  # script, an env it trains on, one with NaN rewards
    "discrete": (ppo_discrete, "CartPole-v1", "NaNReward-v0"),
    "beta": (ppo_continuous_beta, "SwingUpPendulum-v0", "NaNRewardBox-v0"),
}


@pytest.mark.parametrize("case, signum, exit_code", [("discrete", signal.SIGINT, 130), ("beta", signal.SIGTERM, 143)])
def test_interrupted_run_checkpoints_and_resumes_to_the_end(case, signum, exit_code, tmp_path):
    script, env_id, _ = CASES[case]
    command = [sys.executable, os.path.join(ROOT, f"{script.__name__}.py"), "--env-id", env_id,
               "--num-envs", "4", "--num-steps", "64", "--total-timesteps", "51200", "--eval-episodes", "2"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert run.stdout.readline().startswith("run directory: runs/")
    first_line = run.stdout.readline()  # the first progress line: training is under way
    assert first_line.startswith("step")
    run.send_signal(signum)
    out, err = run.communicate(timeout=60)
    assert run.returncode == exit_code, err
    [checkpoint] = glob.glob(str(tmp_path / "runs" / "*" / "checkpoint.pt"))
    # the command printed runs as printed: this Python, the script as it was invoked (README: the venv's python)
    assert f"resume with: {sys.executable} {command[1]} --resume {os.path.relpath(checkpoint, tmp_path)}" in out
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    assert f"{name} received: stopping after this iteration" in err
    saved = torch.load(checkpoint, weights_only=True)
    assert 0 < saved["global_step"] < 51200 and saved["global_step"] == saved["iteration"] * 256
    for key in ("agent", "optimizer", "torch_rng", "args"):
        assert key in saved
    if script is ppo_continuous_beta:  # reward scaling is on by default: its statistics travel too
        assert saved["reward_stats"]["count"] == pytest.approx(saved["global_step"], abs=1) and saved["reward_stats"]["var"] > 0

    resumed = subprocess.run(command[:2] + ["--resume", checkpoint], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    run_dir = os.path.dirname(checkpoint)
    with open(f"{run_dir}/summary.json") as f:
        assert json.load(f)["global_step"] == 51200
    # one curve, in the same run directory, every iteration logged once: no gap, no repeat
    steps = [step for step, _ in read_scalars(run_dir)["charts/learning_rate"]]
    assert steps == list(range(256, 51200 + 1, 256))
    # and the learning-rate schedule picks up where it stopped: linear from 3.5e-3 (discrete) / 1e-3 down
    rates = [value for _, value in read_scalars(run_dir)["charts/learning_rate"]]
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))


@pytest.mark.parametrize("case", CASES)
def test_periodic_checkpoints_are_written_whole(case):
    script, env_id, _ = CASES[case]
    result = script.train(script.Args(env_id=env_id, num_envs=4, num_steps=32, total_timesteps=128 * 5,
                                      checkpoint_every=2, eval_episodes=1))
    assert glob.glob(f"{result['run_dir']}/*.tmp") == []
    saved = torch.load(f"{result['run_dir']}/checkpoint.pt", weights_only=True)
    assert saved["iteration"] == 4 and saved["global_step"] == 4 * 128


@pytest.mark.parametrize("case", CASES)
def test_a_checkpoint_carrying_a_pickled_callable_is_refused(case, capsys):
    script, env_id, _ = CASES[case]
    torch.save({"script": script.__name__, "payload": os.system}, "evil.pt")
    message = refused(script.train, script.Args(env_id=env_id, eval_model="evil.pt"), capsys)
    assert "carries Python objects that could run code" in message


@pytest.mark.parametrize("case", CASES)
def test_environment_returning_nan_is_caught_at_that_step(case, capsys):
    script, _, nan_env = CASES[case]
    args = script.Args(env_id=nan_env, num_envs=1, num_steps=16, total_timesteps=64)
    message = refused(script.train, args, capsys)
    assert f"{nan_env} returned a non-finite reward at step 4;" in message


@pytest.mark.parametrize("case", CASES)
def test_a_blow_up_keeps_the_last_good_checkpoint(case, capsys):
    script, _, nan_env = CASES[case]
    late_nan_env = "Late" + nan_env
    args = script.Args(env_id=late_nan_env, num_envs=1, num_steps=16, total_timesteps=1024, checkpoint_every=1)
    message = refused(script.train, args, capsys)
    assert f"{late_nan_env} returned a non-finite reward at step 101;" in message
    [checkpoint] = glob.glob("runs/*/checkpoint.pt")
    assert f"the last good checkpoint is {checkpoint}" in message
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 96  # iteration 6 of 16 steps


@pytest.mark.parametrize("case", CASES)
def test_absurd_learning_rate_stops_with_the_iteration_and_a_suggestion(case, capsys):
    script, env_id, _ = CASES[case]
    args = script.Args(env_id=env_id, num_envs=4, num_steps=32, total_timesteps=128 * 20, learning_rate=1e30)
    message = refused(script.train, args, capsys)
    assert "at iteration 1;" in message and "try a lower --learning-rate" in message


@pytest.mark.parametrize("case", CASES)
def test_cuda_without_a_gpu_warns_and_trains_on_the_cpu(case, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --cuda is taken")
    script, env_id, _ = CASES[case]
    result = script.train(script.Args(env_id=env_id, num_envs=4, num_steps=32, total_timesteps=128, cuda=True,
                                      eval_episodes=1))
    assert "warning: --cuda asked for but no CUDA device is available; training on the CPU" in capsys.readouterr().err
    assert next(result["agent"].parameters()).device.type == "cpu"


@pytest.mark.parametrize("case", CASES)
def test_resuming_from_a_saved_agent_instead_of_a_checkpoint_is_refused(case, capsys):
    script, env_id, _ = CASES[case]
    result = script.train(script.Args(env_id=env_id, num_envs=4, num_steps=32, total_timesteps=128, save_model=True,
                                      eval_episodes=1))
    message = refused(script.train, script.Args(env_id=env_id, resume=f"{result['run_dir']}/agent.pt"), capsys)
    assert "is a saved agent, not a checkpoint" in message


@pytest.mark.parametrize("wrapper", [[], ["timeout", "300"]])
def test_async_run_interrupted_twice_through_its_process_group_exits_130_without_tracebacks(wrapper, tmp_path):
    """Ctrl-C reaches the whole process group: the async workers must leave it to the main process. Under
    `timeout`, which forwards the signal, the script gets it twice: it quits at once, and cleanly."""
    command = wrapper + [sys.executable, os.path.join(ROOT, "ppo_discrete.py"), "--vectorization-mode", "async",
                         "--num-envs", "4", "--num-steps", "2048", "--total-timesteps", "800000"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                           start_new_session=True)
    assert run.stdout.readline().startswith("run directory: runs/")
    assert run.stdout.readline().startswith("step")
    os.killpg(run.pid, signal.SIGINT)
    if not wrapper:
        time.sleep(0.2)  # a second press (two signals at once would arrive as one), well within an iteration
        os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    # the second signal quits at once, or, if the first already had the checkpoint written, changes nothing
    assert err.strip().splitlines()[-1] == "quitting without a checkpoint" or "checkpoint saved to" in out, err


def test_checkpoints_carry_the_cuda_random_state_where_there_is_one(monkeypatch):
    """On a machine with CUDA, a resumed run continues the GPU's random stream too (faked here on the CPU)."""
    states = {"saved": [torch.tensor([1, 2, 3], dtype=torch.uint8)], "restored": None}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states["saved"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda value: states.update(restored=value))
    args = ppo_discrete.Args(env_id="CartPole-v1", num_envs=4, num_steps=32, total_timesteps=128 * 3,
                             checkpoint_every=2, eval_episodes=1)
    result = ppo_discrete.train(args)  # --cuda off: the network stays on the CPU, only the RNG is faked
    checkpoint = f"{result['run_dir']}/checkpoint.pt"
    assert torch.load(checkpoint, weights_only=True)["cuda_rng"][0].tolist() == [1, 2, 3]
    ppo_discrete.train(ppo_discrete.Args(resume=checkpoint))
    assert states["restored"][0].tolist() == [1, 2, 3]
