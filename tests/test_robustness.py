"""Both scripts: interrupts keep a resumable checkpoint, resuming continues the run, loads are safe, numerical
blow-ups stop loudly."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import ppo_continuous_beta
import ppo_discrete
from tests.helpers import ROOT, NaNRewardEnv, interrupted_run, read_scalars, refused, register_once, tiny

register_once("NaNReward-v0", NaNRewardEnv, max_episode_steps=50)
register_once("NaNRewardBox-v0", NaNRewardEnv, max_episode_steps=50, kwargs={"action": "box"})
register_once("LateNaNReward-v0", NaNRewardEnv, kwargs={"nan_after": 100})
register_once("LateNaNRewardBox-v0", NaNRewardEnv, kwargs={"nan_after": 100, "action": "box"})

CASES = {  # script, an env it trains on, one with NaN rewards
    "discrete": (ppo_discrete, "CartPole-v1", "NaNReward-v0"),
    "beta": (ppo_continuous_beta, "SwingUpPendulum-v0", "NaNRewardBox-v0"),
}


def read_progress(run: subprocess.Popen) -> str:
    """The first lines a run prints, up to its first progress line: training is under way."""
    lines = [run.stdout.readline()]
    assert lines[0].startswith("run directory: runs/"), lines
    while not lines[-1].startswith("step"):
        lines.append(run.stdout.readline())
        assert lines[-1], lines  # the run ended before it showed progress
    return "".join(lines)


# Interrupts and resuming

@pytest.mark.parametrize("case, signum, exit_code", [("discrete", signal.SIGINT, 130), ("beta", signal.SIGTERM, 143)])
def test_interrupted_run_checkpoints_and_resumes_to_the_end(case, signum, exit_code, tmp_path):
    script, env_id, _ = CASES[case]
    command = [sys.executable, os.path.join(ROOT, f"{script.__name__}.py"), "--env-id", env_id,
               "--num-envs", "4", "--num-steps", "64", "--total-timesteps", "51200", "--eval-episodes", "2"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    read_progress(run)
    run.send_signal(signum)
    out, err = run.communicate(timeout=60)
    assert run.returncode == exit_code, err
    [checkpoint] = glob.glob(str(tmp_path / "runs" / "*" / "checkpoint.pt"))
    run_dir = os.path.dirname(checkpoint)
    # the command printed runs as printed: this Python, the script as it was invoked (README: the venv's python)
    assert f"{sys.executable} {command[1]} --resume {os.path.relpath(checkpoint, tmp_path)}" in out
    assert signal.Signals(signum).name in err and "Traceback" not in err
    saved = torch.load(checkpoint, weights_only=True)
    assert 0 < saved["global_step"] < 51200 and saved["global_step"] == saved["iteration"] * 256
    assert saved["finished"] is False
    for key in ("agent", "optimizer", "torch_rng", "args"):
        assert key in saved
    if script is ppo_continuous_beta:  # reward scaling is on by default: its statistics travel too
        assert saved["reward_stats"]["count"] == pytest.approx(saved["global_step"], abs=1)
        assert saved["reward_stats"]["var"] > 0
    assert not os.path.exists(f"{run_dir}/agent.pt")  # --save-model was not given

    # resumed with an output option the interrupted run did not have: it takes it, and warns of nothing
    resumed = subprocess.run(command[:2] + ["--resume", checkpoint, "--save-model"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "warning" not in resumed.stderr
    with open(f"{run_dir}/summary.json") as f:
        assert json.load(f)["global_step"] == 51200
    assert os.path.exists(f"{run_dir}/agent.pt")
    # one curve, in the same run directory, every iteration logged once: no gap, no repeat
    scalars = read_scalars(run_dir)
    assert [step for step, _ in scalars["charts/learning_rate"]] == list(range(256, 51200 + 1, 256))
    # and the learning-rate schedule picks up where it stopped: linear from 3.5e-3 (discrete) / 1e-3 down
    rates = [value for _, value in scalars["charts/learning_rate"]]
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[0] == pytest.approx(script.Args().learning_rate)
    # the checkpoint now holds the finished run
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["finished"] is True and saved["global_step"] == 51200 and saved["iteration"] == 200


@pytest.mark.parametrize("case", CASES)
def test_resuming_with_save_model_writes_the_agent_and_the_finished_checkpoint(case, monkeypatch, capsys):
    """Interrupted at iteration 2 of 4 without --save-model, resumed with it: agent.pt is written, checkpoint.pt
    holds the final state, a second --resume is refused, and both files evaluate as the run did."""
    script = CASES[case][0]
    checkpoint = interrupted_run(script, tiny(script, total_timesteps=512), 2, monkeypatch)
    run_dir = os.path.dirname(checkpoint)
    saved = torch.load(checkpoint, weights_only=True)
    assert (saved["finished"], saved["iteration"], saved["global_step"]) == (False, 2, 256)
    assert not os.path.exists(f"{run_dir}/agent.pt")

    result = script.train(script.Args(resume=checkpoint, save_model=True))
    assert result["run_dir"] == run_dir and result["global_step"] == 512
    saved = torch.load(checkpoint, weights_only=True)
    assert (saved["finished"], saved["iteration"], saved["global_step"]) == (True, 4, 512)
    assert torch.load(f"{run_dir}/agent.pt", weights_only=True)["args"]["save_model"] is True
    capsys.readouterr()
    message = refused(script.train, script.Args(resume=checkpoint), capsys)
    assert "no checkpoint of an unfinished run" in message and f"--eval-model {checkpoint}" in message
    for path in (checkpoint, f"{run_dir}/agent.pt"):
        evaluated = script.evaluate_saved_agent(script.Args(eval_model=path, eval_episodes=2))
        np.testing.assert_array_equal(evaluated["eval_returns"], result["eval_returns"])


@pytest.mark.parametrize("case", CASES)
def test_resuming_a_saved_agent_is_refused(case, capsys):
    script = CASES[case][0]
    result = script.train(tiny(script, total_timesteps=128, save_model=True))
    message = refused(script.train, script.Args(resume=f"{result['run_dir']}/agent.pt"), capsys)
    assert "no checkpoint of an unfinished run" in message and "--eval-model" in message


def test_resume_warns_of_the_settings_it_ignores_and_takes_the_output_options(monkeypatch, capsys):
    checkpoint = interrupted_run(ppo_discrete, tiny(ppo_discrete, total_timesteps=384), 2,
                                 monkeypatch)
    capsys.readouterr()
    result = ppo_discrete.train(ppo_discrete.Args(resume=checkpoint, learning_rate=0.1, num_envs=4, eval_episodes=1))
    [warning] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    # num_envs 4 is the checkpoint's own, and eval_episodes an output option: only the learning rate is ignored
    assert warning.startswith("warning: --resume keeps the checkpoint's settings; ignored:")
    assert "--learning-rate 0.1" in warning and "--num-envs" not in warning and "--eval-episodes" not in warning
    summary = json.load(open(f"{result['run_dir']}/summary.json"))
    assert summary["args"]["learning_rate"] == ppo_discrete.Args().learning_rate
    assert summary["args"]["eval_episodes"] == 1 and len(result["eval_returns"]) == 1


def test_resuming_a_beta_run_at_the_mean_warns_of_nothing_not_given(monkeypatch, capsys):
    """--deterministic-action is not given, so the checkpoint's "mean" overrides nothing the user asked for."""
    args = tiny(ppo_continuous_beta, total_timesteps=384, deterministic_action="mean")
    checkpoint = interrupted_run(ppo_continuous_beta, args, 2, monkeypatch)
    capsys.readouterr()
    result = ppo_continuous_beta.train(ppo_continuous_beta.Args(resume=checkpoint))
    assert not [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert json.load(open(f"{result['run_dir']}/summary.json"))["args"]["deterministic_action"] == "mean"


@pytest.mark.parametrize("case", CASES)
def test_periodic_checkpoints_are_written_whole_and_the_last_one_is_the_finished_run(case):
    script = CASES[case][0]
    result = script.train(tiny(script, total_timesteps=128 * 5, checkpoint_every=2))
    assert glob.glob(f"{result['run_dir']}/*.tmp") == []
    saved = torch.load(f"{result['run_dir']}/checkpoint.pt", weights_only=True)
    assert (saved["iteration"], saved["global_step"], saved["finished"]) == (5, 5 * 128, True)
    # a run asked for no checkpoint writes none
    assert not os.path.exists(f"{script.train(tiny(script, total_timesteps=128))['run_dir']}/checkpoint.pt")


def test_checkpoints_carry_the_cuda_random_state_where_there_is_one(monkeypatch):
    """On a machine with CUDA, a resumed run continues the GPU's random stream too (faked here on the CPU)."""
    states = {"saved": [torch.tensor([1, 2, 3], dtype=torch.uint8)], "restored": None}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states["saved"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda value: states.update(restored=value))
    # --cuda off: the network stays on the CPU, only the RNG is faked
    checkpoint = interrupted_run(ppo_discrete, tiny(ppo_discrete, total_timesteps=384), 2,
                                 monkeypatch)
    assert torch.load(checkpoint, weights_only=True)["cuda_rng"][0].tolist() == [1, 2, 3]
    ppo_discrete.train(ppo_discrete.Args(resume=checkpoint))
    assert states["restored"][0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("wrapper", [[], ["timeout", "300"]])
def test_async_run_interrupted_twice_through_its_process_group_exits_130_without_tracebacks(wrapper, tmp_path):
    """Ctrl-C reaches the whole process group: the async workers must leave it to the main process. Under
    `timeout`, which forwards the signal, the script gets it twice: it quits at once, and cleanly."""
    command = wrapper + [sys.executable, os.path.join(ROOT, "ppo_discrete.py"), "--vectorization-mode", "async",
                         "--num-envs", "4", "--num-steps", "2048", "--total-timesteps", "800000"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                           start_new_session=True)
    read_progress(run)
    os.killpg(run.pid, signal.SIGINT)
    if not wrapper:
        time.sleep(0.2)  # a second press (two signals at once would arrive as one), well within an iteration
        os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err
    assert "Traceback" not in err and "Error" not in err, err
    # the second signal quits at once (no checkpoint), or, if the first already had it written, changes nothing
    assert not glob.glob(str(tmp_path / "runs" / "*" / "checkpoint.pt")) or "--resume" in out, err


# Loading: only files this script saved, never code

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("option", ["eval_model", "resume"])
def test_a_file_carrying_a_pickled_callable_is_refused(case, option, capsys):
    script, env_id, _ = CASES[case]
    torch.save({"script": script.__name__, "payload": os.system}, "evil.pt")
    function = script.evaluate_saved_agent if option == "eval_model" else script.train
    message = refused(function, script.Args(env_id=env_id, **{option: "evil.pt"}), capsys)
    assert "evil.pt" in message and "could run code" in message
    with pytest.raises(ValueError, match="could run code"):  # in Python: an exception, not an exit
        script.load_checkpoint("evil.pt")


OTHER_ENV = {"discrete": "Acrobot-v1", "beta": "LunarLanderContinuous-v3"}  # other observation and action sizes


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bad", ["text", "other script", "reshaped", "other env"])
def test_a_file_it_cannot_use_is_one_line_on_the_command_line_and_a_value_error_in_python(case, bad, capsys):
    script, env_id, _ = CASES[case]
    path = f"{script.train(tiny(script, total_timesteps=128, save_model=True))['run_dir']}/agent.pt"
    saved = torch.load(path, weights_only=True)
    if bad == "text":
        with open("bad.pt", "w") as f:
            f.write("not a checkpoint")
    elif bad == "other script":
        saved["script"] = {"discrete": "ppo_continuous_beta", "beta": "ppo_discrete"}[case]
        torch.save(saved, "bad.pt")
    elif bad == "reshaped":  # right environment, wrong network shape
        saved["agent"] = {name: torch.zeros(3, 3) for name in saved["agent"]}
        torch.save(saved, "bad.pt")
    if bad == "other env":  # a good agent, asked to act on an env whose observations and actions it cannot take
        message = refused(script.evaluate_saved_agent, script.Args(eval_model=path, env_id=OTHER_ENV[case]),
                          capsys)
        assert OTHER_ENV[case] in message or env_id in message
        return
    message = refused(script.evaluate_saved_agent, script.Args(eval_model="bad.pt"), capsys)
    if bad != "reshaped":  # a file that is none of this script's is named, with the script whose files it takes
        assert "bad.pt" in message and f"{script.__name__}.py" in message
        assert "bad.pt" in refused(script.train, script.Args(resume="bad.pt"), capsys)
    with pytest.raises(ValueError):
        script.load_policy("bad.pt")


# Numerical blow-ups

@pytest.mark.parametrize("case", CASES)
def test_environment_returning_nan_is_caught_at_that_step(case, capsys):
    script, _, nan_env = CASES[case]
    args = script.Args(env_id=nan_env, num_envs=1, num_steps=16, total_timesteps=64)
    message = refused(script.train, args, capsys)
    assert "non-finite reward" in message and "at step 4" in message and "env" in message
    assert "checkpoint" not in message  # there is none


@pytest.mark.parametrize("case", CASES)
def test_a_blow_up_keeps_the_last_good_checkpoint(case, capsys):
    script, _, nan_env = CASES[case]
    late_nan_env = "Late" + nan_env
    args = script.Args(env_id=late_nan_env, num_envs=1, num_steps=16, total_timesteps=1024, checkpoint_every=1)
    message = refused(script.train, args, capsys)
    assert "non-finite reward" in message and "at step 101" in message
    [checkpoint] = glob.glob("runs/*/checkpoint.pt")
    assert f"the last good checkpoint is {checkpoint}" in message
    saved = torch.load(checkpoint, weights_only=True)
    assert saved["global_step"] == 96 and saved["finished"] is False  # iteration 6 of 16 steps


@pytest.mark.parametrize("case", CASES)
def test_absurd_learning_rate_stops_with_the_iteration_and_a_suggestion(case, capsys):
    script = CASES[case][0]
    args = tiny(script, total_timesteps=128 * 20, learning_rate=1e30)
    message = refused(script.train, args, capsys)
    assert "non-finite" in message and "at iteration 1;" in message and "try a lower --learning-rate" in message


# Devices

@pytest.mark.parametrize("case", CASES)
def test_cuda_without_a_gpu_warns_and_trains_on_the_cpu(case, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --cuda is taken")
    script = CASES[case][0]
    result = script.train(tiny(script, total_timesteps=128, cuda=True, eval_episodes=1))
    assert "--cuda" in capsys.readouterr().err
    assert next(result["agent"].parameters()).device.type == "cpu"
    assert json.load(open(f"{result['run_dir']}/summary.json"))["args"]["cuda"] is False  # the device actually used
