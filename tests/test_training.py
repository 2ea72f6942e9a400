"""The shared training loop and the `fdabnn train` / `eval` commands, on the real PyTorch backend
and real CIFAR-10 images, at toy sizes."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time

import pytest

from bench import store
from bench.estimators import epoch_values
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
    assert [e["estimator_values"] for e in record["history"]] == [{"weight": {"n": 9}, "activation": {"n": 9}}] * 3

    again = train(spec, run_dir)  # finished: returned as is, nothing retrained
    assert again["finished_at"] == record["finished_at"]


def test_each_epoch_sets_and_records_the_estimators_runtime_values(cifar10, tmp_path, monkeypatch):
    """RBNN: t and k per epoch, the weights' apart from the activations'."""
    spec = build_spec({**TOY, "estimator.name": "rbnn", "noise.enabled": False, "train.epochs": 2,
                       "train.max_steps_per_epoch": 2})
    from backends.pytorch.backend import TorchBackend

    seen = []
    original = TorchBackend.set_estimator_values
    monkeypatch.setattr(TorchBackend, "set_estimator_values", lambda self, values: (seen.append(values),
                                                                                    original(self, values)))
    record = train(spec, tmp_path / "run")
    expected = [epoch_values(spec.estimator, epoch, 2) for epoch in range(2)]
    assert seen == expected and expected[0] != expected[1]
    assert expected[1]["weight"] != expected[1]["activation"]
    assert [e["estimator_values"] for e in record["history"]] == expected
    assert [e["n"] for e in record["history"]] == [None, None]


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

    # the model zoo's spelling with an override after it: the override is applied, not taken as a checkpoint
    one_a_class = _fdabnn("eval", "--checkpoint_path", str(run_dir), "data.test_subset=1", env_extra=env)
    assert one_a_class.returncode == 0, one_a_class.stderr
    assert "on 10 test images" in one_a_class.stderr, one_a_class.stderr


@pytest.mark.parametrize("command", ["train", "eval", "ablate", "summary", "bench", "convert"])
def test_every_subcommand_has_help(command):
    done = _fdabnn(command, "--help", env_extra={})
    assert done.returncode == 0 and "usage: fdabnn" in done.stdout


@pytest.mark.parametrize("args, needle", [
    (["train", "estimator=sign"], "spec field 'estimator.name'"),
    (["train", "train.bogus=1"], "spec field 'train.bogus': unknown key"),
    (["eval", "/nonexistent/checkpoint.pt"], "not found"),
    (["train", "backend=mindspore", "precision=bf16", "device=cpu"], "bf16"),
])
def test_bad_input_is_one_line_and_non_zero(args, needle, tmp_path):
    done = _fdabnn(*args, env_extra={"FDABNN_RESULTS": str(tmp_path)})
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], done.stderr
    assert not (tmp_path / "runs").exists()  # refused before any work


SMALL_RUN = ["backend=torch", "device=cpu", "fused=false", "data.subset=4", "data.test_subset=4", "batch_size=8",
             "train.eval_batch_size=40", "train.max_steps_per_epoch=2"]


def _only_line(stderr: str, *starts: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith((*starts, "error", "Traceback"))]


@pytest.mark.slow
def test_sigterm_ends_a_training_in_one_line_and_it_resumes(cifar10, tmp_path):
    import signal
    import time

    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "bench.cli", "train", "--run-dir", str(run_dir), "epochs=20", *SMALL_RUN]
    env = {**os.environ, "FDABNN_RESULTS": str(tmp_path / "results")}
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not (run_dir / store.PROGRESS).exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 143, stderr
    assert _only_line(stderr, "terminated") == [
        "terminated (SIGTERM): run the same command again to resume from the last finished epoch"], stderr
    assert not (run_dir / store.RECORD).exists()
    done = json.loads((run_dir / store.PROGRESS).read_text())
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"after epoch {len(done)} of 20" in again.stderr
    assert json.loads((run_dir / store.RECORD).read_text())["history"][:len(done)] == done


def _can_mount_tmpfs() -> bool:
    import shutil
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unprivileged user and mount namespaces (unshare -rm)")
def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_the_rerun_resumes(cifar10, tmp_path):
    """A real full disk: a 3 MB tmpfs holds one checkpoint (model and momentum, ~2.2 MB) but not a
    second beside it; after the one line, the first checkpoint loads and a rerun with room resumes."""
    disk = tmp_path / "disk"
    disk.mkdir()
    train_args = " ".join([sys.executable, "-m", "bench.cli", "train", "--run-dir", f"{disk}/run", "epochs=3",
                           *SMALL_RUN])
    script = (f"mount -t tmpfs -o size=3m tmpfs {disk} && {train_args} 2>{tmp_path}/full.err; echo $? >{tmp_path}/rc;"
              f" cp {disk}/run/progress.json {tmp_path}/progress.json;"
              f" mount -o remount,size=64m {disk} && {train_args} 2>{tmp_path}/again.err; echo $? >{tmp_path}/rc2")
    env = {**os.environ, "FDABNN_RESULTS": str(tmp_path / "results")}
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, timeout=900, check=True)
    full = (tmp_path / "full.err").read_text()
    assert (tmp_path / "rc").read_text().strip() == "1", full
    (line,) = _only_line(full, "terminated")
    assert line.startswith(f"error: results store {disk}/run: no space left writing checkpoint.pt (needs at least ")
    assert "run the same command again to resume" in line
    assert [e["epoch"] for e in json.loads((tmp_path / "progress.json").read_text())] == [0]
    again = (tmp_path / "again.err").read_text()
    assert (tmp_path / "rc2").read_text().strip() == "0", again
    assert "after epoch 1 of 3" in again


def test_a_busy_process_beside_a_cpu_training_marks_its_step_times_shared():
    # a test suite or a compiler beside a CPU training slows its steps as a second training would
    load = store.HostLoad()
    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 2.5: pass"])
    try:
        time.sleep(0.5)  # past the child's interpreter start
        load.start()
        time.sleep(1.0)
        cores = load.stop()
    finally:
        busy.wait()
    assert cores is not None and cores > 0.7  # one busy core, less what the clock's edges cut off
    sharing = store.Sharing(foreign_cores=cores)
    assert sharing.shared("cpu") and not sharing.shared("cuda")
    assert not store.Sharing(foreign_cores=0.05).shared("cpu")


def test_a_spec_stored_before_a_field_existed_is_the_same_spec():
    # a run directory written by an older version (no noise.shortcut in its spec.json) resumes
    from bench.training import same_spec

    spec = build_spec(TOY)
    older = spec.to_dict()
    older["noise"] = {k: v for k, v in older["noise"].items() if k != "shortcut"}
    assert same_spec(older, spec)
    assert not same_spec({**older, "noise": {**older["noise"], "k": 7}}, spec)
    assert not same_spec({**older, "noise": {**older["noise"], "from_the_future": 1}}, spec)
