"""The shared training loop and the `fdabnn train` / `eval` commands, on the real PyTorch backend
and real CIFAR-10 images, at toy sizes."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from bench import store
from bench.spec import build_spec
from bench.training import train

TOY = {"backend": "torch", "device": "cpu", "data.subset": 4, "data.test_subset": 4, "train.batch_size": 8,
       "train.max_steps_per_epoch": 4, "train.eval_batch_size": 40, "estimator.name": "fda", "noise.enabled": True}


def _fdabnn(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_interrupted_run_resumes_after_its_last_epoch(cifar10, tmp_path, monkeypatch):
    spec = build_spec({**TOY, "train.epochs": 3})
    from backends.pytorch.backend import TorchBackend

    calls = {"n": 0}
    original = TorchBackend.train_step

    def interrupt_in_epoch_two(self, *args):
        calls["n"] += 1
        if calls["n"] == 6:  # step 2 of epoch 2
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(TorchBackend, "train_step", interrupt_in_epoch_two)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(spec, run_dir)
    assert store.read_record(run_dir) is None  # interrupted: no final record, a checkpoint of epoch 1
    first_epoch = json.loads((run_dir / store.PROGRESS).read_text())
    assert [e["epoch"] for e in first_epoch] == [0]

    monkeypatch.setattr(TorchBackend, "train_step", original)
    record = train(spec, run_dir)
    assert record["status"] == "finished"
    assert [e["epoch"] for e in record["history"]] == [0, 1, 2]
    assert record["history"][0] == first_epoch[0]  # epoch 1 was not trained again
    assert record["history"][1]["warmup_steps"] > 0  # the resumed process warmed up anew
    assert set(record["final"]) == {"Validation-Loss", "Top1-Acc", "Top5-Acc"}
    assert record["environment"]["data"]["lossy"] is True
    assert record["history"][0]["alpha_first"] == pytest.approx(0.1)

    again = train(spec, run_dir)  # finished: returned as is, nothing retrained
    assert again["finished_at"] == record["finished_at"]


def test_run_directory_of_another_spec_is_refused(cifar10, tmp_path):
    from bench.errors import UserError

    train(build_spec({**TOY, "train.epochs": 1}), tmp_path / "run")
    with pytest.raises(UserError, match="another spec"):
        train(build_spec({**TOY, "train.epochs": 2}), tmp_path / "run")


def test_cli_train_then_eval_prints_the_model_zoo_dict(cifar10, tmp_path):
    env = {"FDABNN_RESULTS": str(tmp_path)}
    trained = _fdabnn("train", "backend=torch", "device=cpu", "estimator=fda", "n=9", "noise=true", "epochs=1",
                      "data.subset=4", "data.test_subset=4", "batch_size=8", "train.eval_batch_size=40",
                      env_extra=env)
    assert trained.returncode == 0, trained.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    for name in (store.SPEC, store.ENVIRONMENT, store.PROGRESS, store.RECORD, "checkpoint.pt"):
        assert (run_dir / name).is_file(), name
    environment = json.loads((run_dir / store.ENVIRONMENT).read_text())
    assert {"git_commit", "python", "torch", "cpu_model", "threads", "data"} <= set(environment)

    evaluated = _fdabnn("eval", str(run_dir), env_extra=env)
    assert evaluated.returncode == 0, evaluated.stderr
    result = ast.literal_eval(evaluated.stdout.strip().splitlines()[-1])
    assert list(result) == ["Validation-Loss", "Top1-Acc", "Top5-Acc"]
    record = json.loads((run_dir / store.RECORD).read_text())
    assert result == pytest.approx(record["final"])  # the same checkpoint, the same test images


@pytest.mark.parametrize("command", ["train", "eval", "ablate", "summary", "bench", "convert"])
def test_every_subcommand_has_help(command):
    done = _fdabnn(command, "--help", env_extra={})
    assert done.returncode == 0 and "usage: fdabnn" in done.stdout


@pytest.mark.parametrize("args, needle", [
    (["train", "estimator=sign"], "spec field 'estimator.name'"),
    (["train", "train.bogus=1"], "spec field 'train.bogus': unknown key"),
    (["eval", "/nonexistent/checkpoint.pt"], "not found"),
    (["train", "backend=torch", "precision=fp16", "device=cpu"], "fp16"),
])
def test_bad_input_is_one_line_and_non_zero(args, needle, tmp_path):
    done = _fdabnn(*args, env_extra={"FDABNN_RESULTS": str(tmp_path)})
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], done.stderr
    assert not (tmp_path / "runs").exists()  # refused before any work
