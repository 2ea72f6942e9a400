"""Every bad input is one line on stderr naming the thing and the fix, a non-zero exit, no
traceback, and loses nothing: the records already in the store are byte for byte intact after each.

One table of inputs (spec, study, data, checkpoint, store, filesystem), each run as a real
`fdabnn` process against a results store that holds a finished run."""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bench.environment import REPO

# a finished run of the committed store: what every case must leave untouched
SAMPLE_RUN = REPO / "results" / "runs" / "estimators-quick-torch-ste-fp32-s0-cc8ca1b106"
PWNED = "/tmp/fdabnn-test-pickle-ran"  # what a malicious checkpoint would create if its pickle ran
STUDY_OK = 'title = "T"\nquestion = "Q?"\nbackends = ["torch"]\n[[grid]]\nestimator.name = ["ste"]\n'


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    needle: str  # in the one error line
    files: dict[str, bytes | str] = field(default_factory=dict)  # written under the case's folder first
    env: dict[str, str] = field(default_factory=dict)  # {case} is the case's folder
    exit_code: int | None = None  # None: any non-zero


def _evil_pt() -> bytes:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {PWNED}",))

    return pickle.dumps({"model": Evil()})


def _torch_file(obj_factory: Callable[[], object]) -> Callable[[], bytes]:
    def make() -> bytes:
        import io

        import torch

        buffer = io.BytesIO()
        torch.save(obj_factory(), buffer)
        return buffer.getvalue()
    return make


def _wrong_architecture():
    import torch
    return {"model": {"conv1.weight": torch.zeros(3, 3)}, "meta": {}}


def _model_state():
    from backends.pytorch.resnet import BinaryResNet20
    from bench.spec import Spec
    return BinaryResNet20(Spec()).state_dict()


def _checkpoint_with_meta(meta: object) -> Callable[[], bytes]:
    return _torch_file(lambda: {"model": _model_state(), "meta": meta})


def _alias_bomb() -> str:
    """Nine levels of nine aliases: a few hundred bytes that name 9**9 strings."""
    lines = ['l0: &l0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


SUITE_OK = 'device = "cpu"\n[[groups]]\nbackend = "torch"\nprecision = "fp32"\nbatch = 8\ncompile = false\n' \
           'estimators = ["ste"]\n'
TINY = ("data.subset=2", "data.test_subset=1", "batch_size=8", "epochs=1")  # a spec whose model builds quickly


def _hundred_classes():
    from backends.pytorch.resnet import BinaryResNet20
    from bench.spec import Spec
    return {"model": BinaryResNet20(Spec(model={"num_classes": 100})).state_dict(), "meta": {}}


SPEC_CASES = [
    Case("unknown-estimator", ("train", "estimator=sign"), "spec field 'estimator.name'", exit_code=2),
    Case("unknown-key", ("train", "train.bogus=1"), "spec field 'train.bogus': unknown key", exit_code=2),
    Case("lr-inf", ("train", "lr=inf"), "spec field 'optim.lr'", exit_code=2),
    Case("lr-huge", ("train", "lr=1e308"), "spec field 'optim.lr'", exit_code=2),
    Case("lr-negative", ("train", "lr=-1"), "greater than 0", exit_code=2),
    Case("n-negative", ("train", "n=-1"), "spec field 'estimator.n'", exit_code=2),
    Case("n-end-below-n", ("train", "n=9", "n_end=3"), "n_end (3) must be >= estimator.n (9)", exit_code=2),
    Case("batch-zero", ("train", "batch_size=0"), "spec field 'train.batch_size'", exit_code=2),
    Case("batch-over-subset", ("train", "batch_size=64", "data.subset=4"), "exceeds the 40 training images",
         exit_code=2),
    Case("precision-fp8", ("train", "precision=fp8"), "spec field 'precision'", exit_code=2),
    Case("backend-jax", ("train", "backend=jax"), "spec field 'backend'", exit_code=2),
    Case("device-tpu", ("train", "device=tpu"), "spec field 'device'", exit_code=2),
    Case("epochs-zero", ("train", "epochs=0"), "spec field 'train.epochs'", exit_code=2),
    Case("noise-maybe", ("train", "noise=maybe"), "spec field 'noise.enabled'", exit_code=2),
    Case("noise-shortcut-unknown", ("train", "noise.shortcut=cos"), "spec field 'noise.shortcut'", exit_code=2),
    Case("clip-zero", ("train", "estimator.clip=0"), "spec field 'estimator.clip'", exit_code=2),
    Case("form-unknown", ("train", "form=fourier"), "spec field 'estimator.form'", exit_code=2),
    Case("beta-zero", ("train", "estimator=swish_sign", "estimator.beta=0"),
         "spec field 'estimator.beta': Input should be greater than 0 (got 0.0); allowed: float and > 0", exit_code=2),
    Case("dsq-alpha-one", ("train", "estimator=dsq", "estimator.dsq_alpha=1"),
         "spec field 'estimator.dsq_alpha': Input should be less than 1 (got 1.0); allowed: float and > 0 and < 1",
         exit_code=2),
    Case("dsq-alpha-zero", ("train", "estimator=dsq", "estimator.dsq_alpha=0"), "allowed: float and > 0 and < 1",
         exit_code=2),
    Case("t-min-not-below-t-max", ("train", "estimator=ede", "estimator.t_min=20"),
         "spec field 'estimator': estimator.t_min (20) must be < estimator.t_max (10)", exit_code=2),
    Case("t-max-below-rbnn-t-min", ("train", "estimator=rbnn", "estimator.t_max=0.005"),
         "estimator.t_min (0.01, rbnn default) must be < estimator.t_max (0.005)", exit_code=2),
    Case("o-end-below-one", ("train", "estimator=reste", "estimator.o_end=0.5"),
         "spec field 'estimator.o_end': Input should be greater than or equal to 1 (got 0.5); allowed: float and >= 1",
         exit_code=2),
    Case("reste-cut-inside-interval", ("train", "estimator=reste", "estimator.cut=0.05"),
         "spec field 'estimator': estimator.cut (0.05) must be > estimator.interval (0.1)", exit_code=2),
    Case("not-key-value", ("train", "fda"), "expected key=value", exit_code=2),
    Case("value-as-section", ("train", "n=3", "estimator.n.x=1"), "'n' is a value, not a section", exit_code=2),
    Case("spec-file-missing", ("train", "--spec", "{case}/none.toml"), "not found", exit_code=2),
    Case("spec-file-bad-toml", ("train", "--spec", "{case}/bad.toml"), "not valid TOML",
         {"bad.toml": "[train\nepochs = 1"}, exit_code=2),
    Case("spec-file-yaml-list", ("train", "--spec", "{case}/list.yaml"), "top level is a list",
         {"list.yaml": "- estimator: fda\n- epochs: 1\n"}, exit_code=2),
    Case("spec-file-json-list", ("train", "--spec", "{case}/list.json"), "top level is a list",
         {"list.json": "[1, 2]"}, exit_code=2),
    Case("spec-file-extension", ("train", "--spec", "{case}/spec.txt"), "unknown extension",
         {"spec.txt": "epochs: 1"}, exit_code=2),
    Case("bf16-on-mindspore-cpu", ("train", "backend=mindspore", "precision=bf16", "device=cpu"), "reject bfloat16",
         exit_code=3),
    Case("cuda-without-gpu", ("train", "device=cuda"), "CUDA", exit_code=3),
    Case("usage-unknown-option", ("train", "--bogus"), "unrecognized arguments: --bogus", exit_code=2),
    Case("usage-no-command", (), "required: COMMAND", exit_code=2),
    # values parse as their field's type (no YAML 1.1 guessing), each field once
    Case("seed-sexagesimal", ("train", "seed=1:30"), "spec field 'train.seed': expected a whole number", exit_code=2),
    Case("epochs-true", ("train", "epochs=true"), "spec field 'train.epochs'", exit_code=2),
    Case("epochs-decimal", ("train", "epochs=1.5"), "spec field 'train.epochs'", exit_code=2),
    Case("noise-yes", ("train", "noise=yes"), "spec field 'noise.enabled': expected true or false", exit_code=2),
    Case("n-octal-prefix", ("train", "n=0o10"), "spec field 'estimator.n'", exit_code=2),
    Case("lr-hex", ("train", "lr=0x10"), "spec field 'optim.lr': expected a number", exit_code=2),
    Case("override-twice", ("train", "n=3", "estimator.n=4"), "estimator.n is already given ('n=3')", exit_code=2),
    Case("data-root-twice", ("train", "--data-root", "{case}/a", "data.root={case}/b"), "data.root is already given",
         exit_code=2),
    Case("subset-over-split", ("train", "data.subset=6000"), "spec field 'data.subset'", exit_code=2),
    Case("test-subset-over-split", ("train", "data.test_subset=1001"), "spec field 'data.test_subset'", exit_code=2),
    Case("spec-yaml-duplicate-section", ("train", "--spec", "{case}/d.yaml"), "duplicate key 'train'",
         {"d.yaml": "train: {epochs: 1}\ntrain: {batch_size: 8}\n"}, exit_code=2),
    Case("spec-json-duplicate-key", ("train", "--spec", "{case}/d.json"), "duplicate key 'backend'",
         {"d.json": '{"backend": "torch", "backend": "mindspore"}'}, exit_code=2),
    Case("spec-yaml-yes", ("train", "--spec", "{case}/y.yaml"), "spec field 'noise.enabled'",
         {"y.yaml": "noise: {enabled: yes}\n"}, exit_code=2),
    Case("spec-yaml-sexagesimal", ("train", "--spec", "{case}/s.yaml"), "spec field 'train.seed'",
         {"s.yaml": "train: {seed: 1:30}\n"}, exit_code=2),
    Case("spec-yaml-alias-bomb", ("train", "--spec", "{case}/bomb.yaml"), "expands past 100,000 values",
         {"bomb.yaml": _alias_bomb()}, exit_code=2),
    Case("spec-not-utf8", ("train", "--spec", "{case}/l1.toml"), "not UTF-8 text",
         {"l1.toml": b"[train]\nepochs = 1 # \xe9t\xe9\n"}, exit_code=2),
    Case("spec-toml-date", ("train", "--spec", "{case}/date.toml"), "key 'data.root': a date",
         {"date.toml": "[data]\nroot = 1979-05-27\n"}, exit_code=2),
    Case("spec-is-a-folder", ("train", "--spec", "{case}/dir.toml"), "is a folder", {"dir.toml/x": ""}, exit_code=2),
    Case("spec-too-large", ("train", "--spec", "{case}/big.toml"), "larger than the 1,048,576 an input file may be",
         {"big.toml": "#" * (1 << 20) + "\n"}, exit_code=2),
]

STUDY_CASES = [
    Case("study-unknown", ("ablate", "nosuchstudy"), "study 'nosuchstudy': unknown", exit_code=2),
    Case("study-unknown-key", ("ablate", "{case}/s.toml"), "key 'bogus': unknown",
         {"s.toml": "bogus = 1\n" + STUDY_OK}, exit_code=2),
    Case("study-bad-toml", ("ablate", "{case}/s.toml"), "not valid TOML", {"s.toml": "title = \n"}, exit_code=2),
    Case("study-grid-value", ("ablate", "{case}/s.toml"), "spec field 'estimator.n'",
         {"s.toml": STUDY_OK.replace('name = ["ste"]', "n = [-1]")}, exit_code=2),
    Case("study-grid-not-list", ("ablate", "{case}/s.toml"), "expected a list of values",
         {"s.toml": STUDY_OK.replace('["ste"]', '"ste"')}, exit_code=2),
    Case("study-profile-unknown", ("ablate", "{case}/s.toml", "--profile", "nope"), "profile 'nope': unknown",
         {"s.toml": STUDY_OK}, exit_code=2),
    Case("study-seeds", ("ablate", "{case}/s.toml", "--seeds", "a,b"), "seeds 'a,b'", {"s.toml": STUDY_OK},
         exit_code=2),
    Case("study-arch-unknown", ("ablate", "{case}/s.toml", "--arch", "vgg"), "choose one of resnet20, vgg_small",
         {"s.toml": STUDY_OK}, exit_code=2),
    Case("study-backend", ("ablate", "{case}/s.toml", "--backends", "mindspore"), "not one of study",
         {"s.toml": STUDY_OK}, exit_code=2),
    Case("bench-suite-unknown", ("bench", "--suite", "nope"), "bench suite 'nope'", exit_code=2),
    Case("bench-gpu-without-cuda", ("bench", "--suite", "gpu"), "make bench-cpu", exit_code=3),
    # a grid over what the runner sets would be overruled: refused, naming the flag
    Case("study-grid-seed", ("ablate", "{case}/s.toml"), "train.seed is set by the runner, not the study; the seeds "
         "are the profile's; run others with --seeds", {"s.toml": STUDY_OK + "train.seed = [0, 1, 2]\n"}, exit_code=2),
    Case("study-grid-seed-alias", ("ablate", "{case}/s.toml"), "key 'seed': train.seed is set by the runner",
         {"s.toml": STUDY_OK + "seed = [0, 1]\n"}, exit_code=2),
    # the Ray executor: a lease timeout that is no number
    Case("study-ray-lease-timeout", ("ablate", "{case}/s.toml", "--executor", "ray", "--profile", "smoke", "--device",
                                     "cpu"), "FDABNN_LEASE_TIMEOUT_S='soon': expected a number of seconds > 0",
         {"s.toml": STUDY_OK}, env={"FDABNN_LEASE_TIMEOUT_S": "soon"}, exit_code=2),
    Case("study-grid-backend", ("ablate", "{case}/s.toml"), "backends = [...]",
         {"s.toml": STUDY_OK + 'backend = ["mindspore"]\n'}, exit_code=2),
    Case("study-grid-device", ("ablate", "{case}/s.toml"), "choose it with --device",
         {"s.toml": STUDY_OK + 'device = ["cuda"]\n'}, exit_code=2),
    Case("study-base-seed", ("ablate", "{case}/s.toml"), "[base] key 'train.seed'",
         {"s.toml": STUDY_OK.replace("[[grid]]", "[base]\ntrain.seed = 3\n[[grid]]")}, exit_code=2),
    Case("study-not-utf8", ("ablate", "{case}/s.toml"), "not UTF-8 text",
         {"s.toml": STUDY_OK.encode() + b"# \xff\n"}, exit_code=2),
    Case("study-is-a-folder", ("ablate", "{case}/s.toml"), "is a folder", {"s.toml/x": ""}, exit_code=2),
    Case("study-toml-date", ("ablate", "{case}/s.toml"), "key 'title': a date",
         {"s.toml": STUDY_OK.replace('title = "T"', "title = 2024-01-01")}, exit_code=2),
    # a bench that would measure nothing, and suites checked when they load
    Case("bench-budget-negative", ("bench", "--budget-s", "-1"), "--budget-s -1.0: expected a number of seconds > 0",
         exit_code=2),
    Case("bench-budget-nan", ("bench", "--budget-s", "nan"), "--budget-s nan", exit_code=2),
    Case("bench-backends-match-nothing", ("bench", "--backends", "jax"), "matches no group", exit_code=2),
    Case("bench-suite-steps-zero", ("bench", "--suite", "{case}/s.toml"), "key 'steps': expected a whole number >= 1",
         {"s.toml": "steps = 0\n" + SUITE_OK}, exit_code=2),
    Case("bench-suite-rounds-zero", ("bench", "--suite", "{case}/s.toml"), "[[groups]] 1 key 'rounds'",
         {"s.toml": SUITE_OK + "rounds = 0\n"}, exit_code=2),
    Case("bench-suite-precision-fp8", ("bench", "--suite", "{case}/s.toml"), "key 'precision': 'fp8' is not one of",
         {"s.toml": SUITE_OK.replace('"fp32"', '"fp8"')}, exit_code=2),
    Case("bench-suite-batch-zero", ("bench", "--suite", "{case}/s.toml"), "key 'batch': expected a whole number >= 1",
         {"s.toml": SUITE_OK.replace("batch = 8", "batch = 0")}, exit_code=2),
    Case("bench-suite-unknown-group-key", ("bench", "--suite", "{case}/s.toml"), "key 'bogus': unknown",
         {"s.toml": SUITE_OK + "bogus = 1\n"}, exit_code=2),
    Case("bench-suite-no-estimators", ("bench", "--suite", "{case}/s.toml"), "key 'estimators': empty",
         {"s.toml": SUITE_OK.replace('["ste"]', "[]")}, exit_code=2),
    Case("bench-suite-budget-zero", ("bench", "--suite", "{case}/s.toml"), "key 'budget_s'",
         {"s.toml": "budget_s = 0\n" + SUITE_OK}, exit_code=2),
    Case("bench-suite-bad-case-spec", ("bench", "--suite", "{case}/s.toml"), "case 'ste': spec field 'train.bogus'",
         {"s.toml": SUITE_OK.replace("[[groups]]", "[base]\n\"train.bogus\" = 1\n[[groups]]")}, exit_code=2),
]

DATA_CASES = [
    Case("data-root-missing", ("train", "data.root={case}/none", "data.download=false", "epochs=1"),
         "no such file or folder", exit_code=2),
    Case("data-root-empty", ("train", "data.root={case}/empty", "data.download=false", "epochs=1"),
         "no CIFAR-10 copy found", {"empty/.keep": ""}, exit_code=2),
    Case("data-archive-corrupt", ("train", "data.root={case}/data", "epochs=1"),
         "cifar-10-python.tar.gz: not a readable tar archive", {"data/cifar-10-python.tar.gz": b"garbage"},
         exit_code=2),
    Case("data-deadline-env", ("train", "data.root={case}/none", "epochs=1"), "CIFAR10_DOWNLOAD_DEADLINE_S",
         env={"CIFAR10_DOWNLOAD_DEADLINE_S": "soon"}, exit_code=2),
]

CHECKPOINT_CASES = [
    Case("init-from-missing", ("train", "init.from={case}/none.pt", *TINY), "no such run directory or checkpoint file",
         exit_code=2),
    Case("init-from-resnet20-into-vgg-small", ("train", "init.from={case}/r.pt", "model.name=vgg_small", *TINY),
         "its network is not this run's: model.name resnet20 (this run: vgg_small)",
         {"r.pt": _torch_file(lambda: {"model": _model_state(), "meta": {}})}, exit_code=2),
    Case("eval-nothing", ("eval",), "no checkpoint given", exit_code=2),
    Case("eval-missing", ("eval", "{case}/none.pt"), "not found", exit_code=2),
    Case("eval-suffix", ("eval", "{case}/model.onnx"), "unknown suffix '.onnx'", {"model.onnx": b"x"},
         exit_code=2),
    Case("eval-truncated-pt", ("eval", "{case}/t.pt"), "not a readable PyTorch checkpoint",
         {"t.pt": b"PK\x03\x04truncated"}, exit_code=2),
    Case("eval-random-ckpt", ("eval", "{case}/r.ckpt"), "not a readable MindSpore checkpoint",
         {"r.ckpt": b"\x00garbage" * 32}, exit_code=2),
    Case("eval-malicious-pt", ("eval", "{case}/evil.pt"), "not a readable PyTorch checkpoint",
         {"evil.pt": _evil_pt()}, exit_code=2),
    Case("eval-wrong-architecture", ("eval", "{case}/w.pt"), "does not fit this spec's model",
         {"w.pt": _torch_file(_wrong_architecture)}, exit_code=2),
    Case("eval-100-classes", ("eval", "{case}/c100.pt"), "does not fit this spec's model",
         {"c100.pt": _torch_file(_hundred_classes)}, exit_code=2),
    Case("eval-torn-spec", ("eval", "{case}/run"), "torn", {"run/spec.json": '{"backend": "to',
                                                            "run/checkpoint.pt": b"x"}, exit_code=2),
    Case("eval-empty-run-dir", ("eval", "{case}/run"), "no checkpoint.pt or checkpoint.ckpt",
         {"run/spec.json": "{}"}, exit_code=2),
    Case("convert-same-kind", ("convert", "{case}/a.pt", "{case}/b.pt"), "both are torch checkpoints",
         exit_code=2),
    Case("convert-suffix", ("convert", "{case}/a.pt", "{case}/b.onnx"), "unknown suffix '.onnx'", exit_code=2),
    Case("convert-destination-folder", ("convert", "{case}/a.pt", "{case}/out.ckpt"), "the destination is a folder",
         {"out.ckpt/x": ""}, exit_code=2),
    Case("eval-two-checkpoints", ("eval", "--checkpoint_path", "{case}/a.pt", "{case}/b.pt"),
         "given besides --checkpoint_path", exit_code=2),
    Case("eval-override-in-checkpoint-place", ("eval", "data.test_subset=1"), "is where the checkpoint goes",
         exit_code=2),
    Case("eval-meta-wrong-type", ("eval", "{case}/m.pt"), "its metadata is a str, not a table",
         {"m.pt": _checkpoint_with_meta("epoch 3")}, exit_code=2),
    Case("eval-meta-epoch-wrong-type", ("eval", "{case}/m.pt"), "its metadata's epoch is 'three'",
         {"m.pt": _checkpoint_with_meta({"epoch": "three"})}, exit_code=2),
]

STORE_CASES = [
    Case("summary-results-is-a-file", ("summary",), "not a writable folder", {"results-file": "x"},
         env={"FDABNN_RESULTS": "{case}/results-file"}, exit_code=2),
    Case("ablate-results-is-a-file", ("ablate", "{case}/s.toml", "--profile", "smoke"), "not a writable folder",
         {"results-file": "x", "s.toml": STUDY_OK}, env={"FDABNN_RESULTS": "{case}/results-file"}, exit_code=2),
    Case("bench-results-is-a-file", ("bench", "--suite", "cpu"), "not a writable folder", {"results-file": "x"},
         env={"FDABNN_RESULTS": "{case}/results-file"}, exit_code=2),
    Case("train-run-dir-under-a-file", ("train", "--run-dir", "{case}/file/run", "epochs=1"),
         "not a writable folder", {"file": "x"}, exit_code=2),
    Case("train-run-dir-of-another-spec", ("train", "--run-dir", "{case}/run", "epochs=1"),
         "holds a run of another spec", {"run/spec.json": '{"backend": "mindspore"}'}, exit_code=2),
    # a run directory's files say which spec they belong to; a finished record of another is never deleted
    Case("train-run-dir-finished-record-of-another-spec", ("train", "--run-dir", "{case}/run", "epochs=1"),
         "holds a run of another spec (its record.json says so)", {"run/record.json": (SAMPLE_RUN / "record.json")
                                                                  .read_bytes()}, exit_code=2),
    Case("train-run-dir-checkpoint-of-another-spec", ("train", "--run-dir", "{case}/run", *TINY),
         "checkpoint.pt is of another spec",
         {"run/checkpoint.pt": _checkpoint_with_meta({"epoch": 0, "history": [], "wall_s": 0.0,
                                                      "spec": {"backend": "mindspore"}})}, exit_code=2),
    Case("train-run-dir-checkpoint-unidentified", ("train", "--run-dir", "{case}/run", *TINY),
         "cannot be told apart", {"run/checkpoint.pt": _checkpoint_with_meta({"epoch": 0, "history": [],
                                                                              "wall_s": 0.0})}, exit_code=2),
    Case("train-run-dir-checkpoint-meta-wrong-type", ("train", "--run-dir", "{case}/run", *TINY),
         "its metadata's history is not a list",
         {"run/checkpoint.pt": _checkpoint_with_meta({"epoch": 0, "history": "all", "wall_s": 0.0})}, exit_code=2),
    Case("train-path-component-too-long", ("train", "--run-dir", "{case}/" + "x" * 300 + "/run", "epochs=1"),
         "File name too long", exit_code=2),
    Case("results-env-empty", ("summary",), "FDABNN_RESULTS is set but empty", env={"FDABNN_RESULTS": ""},
         exit_code=2),
]

CASES = SPEC_CASES + STUDY_CASES + DATA_CASES + CHECKPOINT_CASES + STORE_CASES


def test_the_table_is_large_enough():
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store")
    shutil.copytree(SAMPLE_RUN, root / "runs" / SAMPLE_RUN.name)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _fill(text: str, case_dir: Path) -> str:
    return text.replace("{case}", str(case_dir))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_non_zero_and_loses_nothing(case: Case, results: Path, tmp_path: Path):
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        content = content() if callable(content) else content
        if isinstance(content, str):
            path.write_text(_fill(content, tmp_path))
        else:
            path.write_bytes(content)
    before, case_before = _snapshot(results), _snapshot(tmp_path)
    env = {**os.environ, "FDABNN_RESULTS": str(results), "COLUMNS": "120",
           **{k: _fill(v, tmp_path) for k, v in case.env.items()}}
    env.pop("FDABNN_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "bench.cli", *(_fill(a, tmp_path) for a in case.args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0, done.stderr
    if case.exit_code is not None:
        assert done.returncode == case.exit_code, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert case.needle in lines[0], lines[0]
    assert _snapshot(results) == before
    assert _snapshot(tmp_path) == case_before  # the case's own files too (a run directory, a spec file)
    assert not Path(PWNED).exists()  # a refused pickle ran nothing


def test_a_claimed_run_directory_names_its_holder(results: Path, tmp_path: Path):
    """A second `fdabnn train` into a directory another process trains is refused, naming it."""
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from bench.store import claim\nwith claim(Path(sys.argv[1])):\n"
                               "    print('held', flush=True); time.sleep(60)", str(run_dir)],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        done = subprocess.run([sys.executable, "-m", "bench.cli", "train", "--run-dir", str(run_dir), "epochs=1"],
                              cwd=REPO, env={**os.environ, "FDABNN_RESULTS": str(results)},
                              capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 4 and len(lines) == 1, done.stderr
    assert f"in use by pid {holder.pid}" in lines[0]
    time.sleep(0.1)
    from bench.store import holder as claim_holder
    assert claim_holder(run_dir) is None  # the holder died: the claim went with it
