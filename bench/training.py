"""The training loop both backends share: data order, schedules, timing, progress, checkpoints,
resume and the run record. A backend only executes steps (backends/base.py)."""
from __future__ import annotations

import math
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeRemainingColumn

import backends
from backends.base import Backend, StepStats
from bench import store
from bench.data.augment import batch_plan, plan_epoch, steps_per_epoch
from bench.data.cifar10 import load_for_spec
from bench.data.dataset import Cifar10Arrays
from bench.divergence import Divergence, divergence
from bench.environment import describe
from bench.errors import NoSpace, UserError
from bench.estimators import estimator, variant_label
from bench.init import source as init_source
from bench.metrics import TOP1, TOP5, VALIDATION_LOSS
from bench.schedules import Schedules
from bench.spec import Spec, build_spec

# Steps at the start of each process whose times are kept apart from the medians: compilation,
# allocator growth and autotuning happen there.
WARMUP_STEPS = 3
ERROR_LOG = "error.log"
PEER_CHECK_STEPS = 20  # how often a training looks for others on its host (a glob and a few flocks)


FAULTS = ("crash", "nonfinite", "segfault", "slow")
SLOW_STEP_S = 1.0


class NonFiniteLoss(Exception):
    """The training loss became NaN or infinite."""


def injected_fault(label: str) -> str | None:
    """Test hook: FDABNN_FAULT="<substring of a run's label>:<kind>[,...]" makes every training step
    of a matching run fail, so the ablation runner's failure isolation is tested on real runs.
    Kinds: crash (an exception, recorded "failed" by this loop), nonfinite (the non-finite loss
    path), segfault (the process dies by SIGSEGV and writes nothing), slow (each step sleeps
    SLOW_STEP_S more, results unchanged: a cell lasts long enough to lose its node mid-training)."""
    for entry in filter(None, os.environ.get("FDABNN_FAULT", "").split(",")):
        target, _, kind = entry.rpartition(":")
        if kind not in FAULTS or not target:
            raise UserError(f"FDABNN_FAULT '{entry}': expected <label substring>:{'|'.join(FAULTS)}")
        if target in label:
            return kind
    return None


def _inject(fault: str, stats: StepStats) -> None:
    if fault == "slow":
        time.sleep(SLOW_STEP_S)
        return
    if fault == "crash":
        raise RuntimeError("injected crash (FDABNN_FAULT)")
    if fault == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    stats.nonfinite = True


def default_run_dir(spec: Spec) -> Path:
    return store.results_root() / "runs" / f"{spec.label()}-s{spec.train.seed}-{spec.digest()}"


@dataclass
class _Run:
    spec: Spec
    run_dir: Path
    backend: Backend
    data: Cifar10Arrays
    history: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    init: dict[str, Any] | None = None  # where the weights came from (init.from), bench/init/source.py

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / f"{store.CHECKPOINT_STEM}{self.backend.checkpoint_suffix}"


class RunFailed(UserError):
    """Training raised; the run is recorded failed and its traceback kept in the run directory."""

    exit_code = 1


def same_spec(tree: Any, spec: Spec) -> bool:
    """Whether a stored spec tree trains `spec`: compared once validated, so a tree written before a
    field existed (it holds that field's default) is the same spec; a tree this version cannot read
    (a field it does not know) is another."""
    if tree == spec.to_dict():
        return True
    try:
        return build_spec(tree).to_dict() == spec.to_dict()
    except (UserError, TypeError, ValueError):
        return False


def _check_identity(spec: Spec, run_dir: Path) -> bool:
    """Whether run_dir's spec.json or record.json says it trains `spec` (False: neither says anything,
    so its checkpoint must); a directory whose files belong to another spec is refused, nothing
    touched. A torn spec.json or record (a crash outside this code) says nothing and is rewritten."""
    said = []
    for name, read in ((store.SPEC, lambda tree: tree), (store.RECORD, lambda tree: tree.get("spec"))):
        try:
            tree = store.read_json(run_dir / name)
        except store.TornRecord:
            continue
        if isinstance(tree, dict) and read(tree) is not None:
            if not same_spec(read(tree), spec):
                raise UserError(f"run directory {run_dir} holds a run of another spec (its {name} says so); choose "
                                "another --run-dir, or delete that directory to train this spec there")
            said.append(name)
    return bool(said)


def _check_checkpoint(spec: Spec, run_dir: Path, checkpoint: Path, meta: Any, identified: bool) -> dict[str, Any]:
    """The checkpoint's meta, once its own word on its spec is checked: another spec's, or none in a
    directory nothing else identifies, is refused."""
    meta = store.checked_meta(checkpoint, meta)
    if not {"epoch", "history", "wall_s"} <= meta.keys():
        raise UserError(f"run directory {run_dir}: {checkpoint.name} holds a model but no training state "
                        "(epoch, history); delete it to train from scratch, or evaluate it with `fdabnn eval`")
    saved = meta.get("spec")
    if saved is not None and not same_spec(saved, spec):
        raise UserError(f"run directory {run_dir}: {checkpoint.name} is of another spec; choose another "
                        "--run-dir, or delete that directory to train this spec there")
    if saved is None and not identified:
        raise UserError(f"run directory {run_dir}: {checkpoint.name} cannot be told apart from another "
                        "spec's (no spec.json, record.json or spec in the checkpoint); choose another --run-dir, or "
                        "delete the checkpoint to train from scratch")
    return meta


def _check_run_dir(spec: Spec, run_dir: Path) -> None:
    """Everything the run directory says about its spec, read before its claim, the data or any
    write, so that a refusal touches nothing; checked again under the claim."""
    identified = _check_identity(spec, run_dir)
    kind = backends.backend_class(spec.backend)
    checkpoint = run_dir / f"{store.CHECKPOINT_STEM}{kind.checkpoint_suffix}"
    if checkpoint.exists():
        _check_checkpoint(spec, run_dir, checkpoint, kind.read_model_state(checkpoint)[1], identified)


def _progress(console: Console) -> Progress:
    """One line that fits 80 columns: the variant, epoch and step, loss, accuracy and step time
    (on a GPU, whose steps are never synchronised, the last finished epoch's), and the ETA of the
    whole run (its task counts every step of every epoch)."""
    return Progress(TextColumn("{task.description} {task.fields[where]} {task.fields[stats]} ETA"),
                    TimeRemainingColumn(), console=console, transient=False)


def _stats_text(stats: StepStats, step_ms: float | None) -> str:
    timing = f" {step_ms:.0f} ms" if step_ms is not None else ""
    return f"loss {stats.loss:.3f} acc {stats.accuracy:.3f}{timing}"


def train(spec: Spec, run_dir: Path | None = None, data: Cifar10Arrays | None = None,
          console: Console | None = None) -> dict[str, Any]:
    """Train and evaluate `spec`, resuming from the run directory's last epoch checkpoint.
    Returns the final record (also written to run_dir/record.json)."""
    console = console or Console(stderr=True)
    backends.check_runnable(spec)
    run_dir = Path(run_dir) if run_dir else default_run_dir(spec)
    store.require_writable(run_dir.parent)
    if (finished := _finished(spec, run_dir, console)) is not None:
        return finished
    _check_run_dir(spec, run_dir)
    # init.from before the data and the run directory: a missing or mismatched source writes nothing
    source = _init_source(spec, run_dir)
    # the data before the run directory: a data problem leaves no directory behind
    data = data if data is not None else load_for_spec(spec)
    with store.claim(run_dir):
        return _train_claimed(spec, run_dir, data, console, source)


def _init_source(spec: Spec, run_dir: Path) -> init_source.Source | None:
    """The checkpoint init.from names, read and checked, where the run starts afresh (a run that
    resumes continues from its own checkpoint)."""
    return init_source.resolve(spec) if init_source.wanted(spec, run_dir) else None


def _finished(spec: Spec, run_dir: Path, console: Console) -> dict[str, Any] | None:
    """The run directory's finished record of this spec, if it has one."""
    record = store.read_record(run_dir)
    if record is not None and record["status"] in store.COMPLETE and record["spec"] == spec.to_dict():
        console.print(f"[green]already {record['status']}[/]: {run_dir}")
        return record
    return None


def _train_claimed(spec: Spec, run_dir: Path, data: Cifar10Arrays, console: Console,
                   source: init_source.Source | None = None) -> dict[str, Any]:
    identified = _check_identity(spec, run_dir)
    if (finished := _finished(spec, run_dir, console)) is not None:  # by another process meanwhile
        return finished
    spe = steps_per_epoch(len(data.train_y), spec.train.batch_size, spec.train.max_steps_per_epoch)
    backend = backends.prepare(spec, data)
    run = _Run(spec, run_dir, backend, data)

    start_epoch = 0
    if run.checkpoint.exists():
        meta = _check_checkpoint(spec, run_dir, run.checkpoint, backend.load_checkpoint(run.checkpoint), identified)
        start_epoch, run.history, run.wall_s = meta["epoch"] + 1, meta["history"], meta["wall_s"]
        run.init = init_source.recorded(run_dir)
    elif spec.init.from_ is not None:
        run.init = init_source.load_into(backend, source or init_source.resolve(spec))
        store.atomic_write_json(run_dir / init_source.INIT, run.init)
        console.print(f"weights from {run.init['path']} (sha256 {run.init['sha256'][:12]})", soft_wrap=True,
                      highlight=False)
    store.atomic_write_json(run_dir / store.SPEC, spec.to_dict())
    # an earlier attempt's record of this spec (failed, nonfinite, torn): this attempt writes its own;
    # a finished one was returned above, and another spec's refused
    (run_dir / store.RECORD).unlink(missing_ok=True)
    console.print(f"run directory: {run_dir}", soft_wrap=True, highlight=False)  # a path stays one line
    if start_epoch:
        console.print(f"resuming {run_dir.name} after epoch {start_epoch} of {spec.train.epochs}")

    environment = describe(backend.versions()) | {"device": backend.device, "data": data.source.to_dict(),
                                                  "subset": data.subset, "train_step": backend.describe_step()}
    store.atomic_write_json(run_dir / store.ENVIRONMENT, environment)
    try:
        with store.registered(store.results_root(), backend.device) as key:
            diverged = _train_epochs(run, start_epoch, spe, console, key)
        if diverged:
            return _finish(run, environment, "diverged", diverged.describe())
    except NonFiniteLoss as exc:
        return _finish(run, environment, "nonfinite", str(exc))
    except (KeyboardInterrupt, NoSpace):  # resumable as they are: no record (a full disk would not take one)
        raise
    except Exception as exc:  # recorded so an ablation grid can go on; the CLI still exits non-zero
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        (run_dir / ERROR_LOG).write_text(traceback.format_exc())
        _finish(run, environment, "failed", reason)
        raise RunFailed(f"run failed: {reason} (recorded in {run_dir / store.RECORD}; traceback in "
                        f"{run_dir / ERROR_LOG})") from exc
    return _finish(run, environment, "finished", "")


def _train_epochs(run: _Run, start_epoch: int, spe: int, console: Console, device_key: str) -> Divergence | None:
    """The epochs from `start_epoch` on, until the last or until the run diverges (bench/divergence.py:
    returned). Every PEER_CHECK_STEPS steps it looks which other trainings share this host and device
    (bench/store/activity.py), and each epoch records the most it saw."""
    spec, backend = run.spec, run.backend
    results = store.results_root()
    sched = Schedules(spec, spe)
    sync_each_step = backend.device == "cpu"  # fetching stats is free on CPU; on GPU it would stall
    fault = injected_fault(spec.label())
    warmup_left = WARMUP_STEPS
    uses_n = estimator(spec.estimator.name).uses_n
    epochs = spec.train.epochs
    with _progress(console) as bar:
        task = bar.add_task(variant_label(spec), total=epochs * spe, completed=start_epoch * spe, where="",
                            stats="")
        for epoch in range(start_epoch, epochs):
            n, values = sched.n(epoch), sched.estimator_values(epoch)
            backend.set_estimator_values(values)
            values_text = _values_text(values)
            stats, clock, sharing, load = StepStats(), backend.clock(), store.Sharing(), store.HostLoad()
            sharing.see(*store.peers(results, device_key))
            load.start()
            epoch_start = time.perf_counter()
            clock.mark()
            for step, (indices, aug) in enumerate(plan_epoch(len(run.data.train_y), spec.train.batch_size,
                                                             spec.train.seed, epoch, spec.data.augment,
                                                             spec.train.max_steps_per_epoch)):
                global_step = epoch * spe + step
                if step % PEER_CHECK_STEPS == 0:
                    sharing.see(*store.peers(results, device_key))
                backend.train_step(batch_plan(indices, aug), sched.lr(global_step), sched.alpha(global_step))
                clock.mark()
                if fault:
                    _inject(fault, stats)
                where = f"ep {epoch + 1}/{epochs} {step + 1}/{spe}"
                if sync_each_step:
                    stats.add(backend.pop_stats())
                    _check_finite(stats, epoch, step)
                    bar.update(task, advance=1, where=where, stats=_stats_text(stats, clock.intervals_ms()[-1]))
                else:
                    bar.update(task, advance=1, where=where)
            stats.add(backend.pop_stats())
            sharing.foreign_cores = load.stop()
            _check_finite(stats, epoch, spe - 1)
            sharing.see(*store.peers(results, device_key))
            step_ms = clock.intervals_ms()
            warmup = min(warmup_left, len(step_ms))
            warmup_left -= warmup
            metrics = backend.evaluate()
            epoch_wall = time.perf_counter() - epoch_start
            run.wall_s += epoch_wall
            run.history.append({
                "epoch": epoch, "n": n if uses_n else None, "estimator_values": values,
                "alpha_first": sched.alpha(epoch * spe), "alpha_last": sched.alpha(epoch * spe + spe - 1),
                "lr_first": sched.lr(epoch * spe), "lr_last": sched.lr(epoch * spe + spe - 1),
                "train_loss": stats.loss, "train_acc": stats.accuracy, **metrics,
                "step_ms": step_ms, "warmup_steps": warmup, "wall_s": epoch_wall,
                "peers": {"host": sharing.host_peers, "device": sharing.device_peers},
                "foreign_cores": sharing.foreign_cores,
                "shared": sharing.shared(backend.device),
            })
            backend.save_checkpoint(run.checkpoint, {"epoch": epoch, "history": run.history, "wall_s": run.wall_s,
                                                     "spec": spec.to_dict()})
            store.atomic_write_json(run.run_dir / store.PROGRESS, run.history)
            store.write_events(run.run_dir, run.history)
            if not sync_each_step:
                bar.update(task, stats=f"(last epoch) {_stats_text(stats, None)}")
            bar.console.print(
                f"epoch {epoch + 1}/{epochs}{values_text} | train loss {stats.loss:.3f} | top-1 {metrics[TOP1]:.2%} "
                f"top-5 {metrics[TOP5]:.2%} loss {metrics[VALIDATION_LOSS]:.3f} | "
                f"{_median(step_ms[warmup:] or step_ms):.0f} ms")
            if (diverged := divergence(run.history, spec.model.num_classes)) is not None:
                bar.console.print(f"[red]diverged[/]: {diverged.describe()}; stopping")
                return diverged
    return None


def _values_text(values: dict[str, dict[str, float]]) -> str:
    """' n=9', ' t=0.1 k=10', or per role where the roles differ (RBNN): ' weight t=0.01 k=100 |
    activation t=1 k=1'; '' for an estimator without runtime values."""
    def text(role_values: dict[str, float]) -> str:
        return " ".join(f"{name}={value:.4g}" for name, value in role_values.items())

    first, *others = values.values()
    if not first:
        return ""
    if all(other == first for other in others):
        return f" {text(first)}"
    return " " + " | ".join(f"{role} {text(v)}" for role, v in values.items())


def _check_finite(stats: StepStats, epoch: int, step: int) -> None:
    if stats.nonfinite or not math.isfinite(stats.loss_sum):
        raise NonFiniteLoss(f"training loss became non-finite in epoch {epoch + 1} by step {step + 1}")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def _finish(run: _Run, environment: dict[str, Any], status: str, reason: str) -> dict[str, Any]:
    record = store.run_record(run.spec, run.run_dir, environment, run.history, run.wall_s, status, reason,
                              run.backend.peak_memory_bytes(), run.init)
    store.atomic_write_json(run.run_dir / store.RECORD, record)
    return record
