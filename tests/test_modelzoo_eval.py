"""`fdabnn eval` with the model zoo's arguments, data layout and checkpoint layout, in MindSpore and,
converted, in PyTorch: the same images must give the same result dict."""
from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.mindspore
ms = pytest.importorskip("mindspore")


def _fdabnn(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_model_zoo_checkpoint_and_layout_evaluate_alike_in_both_frameworks(tmp_path):
    from backends.mindspore.backend import MindSporeBackend
    from synthetic_data import random_splits, write_binary_batches
    from bench.spec import build_spec

    # The released fdabnn.ckpt's layout: model tensors only, PReLU slopes named reluK.a (MindSpore 1.3).
    backend = MindSporeBackend(build_spec({"backend": "mindspore", "device": "cpu"}))
    backend.build()
    state = {name.replace(".w", ".a") if ".relu" in name else name: value
             for name, value in backend.state_numpy().items()}
    zoo_ckpt = tmp_path / "fdabnn.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in state.items()], str(zoo_ckpt))

    data_root = tmp_path / "cifar10"
    write_binary_batches(data_root, random_splits(per_class=3), "cifar-10-verify-bin")  # the model zoo's split
    env = {"FDABNN_CACHE": str(tmp_path / "cache"), "FDABNN_RESULTS": str(tmp_path / "results")}

    zoo = _fdabnn("eval", "--dataset_path", str(data_root), "--platform", "CPU",
                  "--checkpoint_path", str(zoo_ckpt), env=env)
    assert zoo.returncode == 0, zoo.stderr
    ms_result = ast.literal_eval(zoo.stdout.strip().splitlines()[-1])
    assert list(ms_result) == ["Validation-Loss", "Top1-Acc", "Top5-Acc"]
    # the model zoo's eval also takes the test folder itself (test-only: nothing else is needed)
    bare = _fdabnn("eval", "--dataset_path", str(data_root / "cifar-10-verify-bin"), "--platform", "CPU",
                   "--checkpoint_path", str(zoo_ckpt), env={**env, "CIFAR10_ROOT": "/nonexistent"})
    assert bare.returncode == 0, bare.stderr
    assert ast.literal_eval(bare.stdout.strip().splitlines()[-1]) == ms_result

    converted = _fdabnn("convert", str(zoo_ckpt), str(tmp_path / "fdabnn.pt"), env=env)
    assert converted.returncode == 0, converted.stderr
    torch_eval = _fdabnn("eval", "--dataset_path", str(data_root), "--platform", "CPU",
                         "--checkpoint_path", str(tmp_path / "fdabnn.pt"), env=env)
    assert torch_eval.returncode == 0, torch_eval.stderr
    torch_result = ast.literal_eval(torch_eval.stdout.strip().splitlines()[-1])
    assert torch_result["Top1-Acc"] == ms_result["Top1-Acc"]
    assert torch_result["Top5-Acc"] == ms_result["Top5-Acc"]
    assert torch_result["Validation-Loss"] == pytest.approx(ms_result["Validation-Loss"], rel=1e-4)

    mismatched = tmp_path / "wrong.ckpt"
    ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in state.items() if "linear" not in k],
                       str(mismatched))
    refused = _fdabnn("convert", str(mismatched), str(tmp_path / "wrong.pt"), env=env)
    assert refused.returncode != 0 and "linear" in refused.stderr and not (tmp_path / "wrong.pt").exists()
