"""The `fdabnn` command. Each subcommand is a thin shell over one module of the suite."""
from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
from pathlib import Path

from bench.errors import UserError

ENVIRONMENT = """environment:
  FDABNN_RESULTS   the results store (default: results/ of this checkout): runs/, bench/, micro/, summary.md
  CIFAR10_ROOT     where CIFAR-10 is (default: ~/.cache/fdabnn/cifar10, downloaded there when missing)
  FDABNN_CACHE     where decoded CIFAR-10 arrays are cached (default: ~/.cache/fdabnn/arrays)
  CIFAR10_URL, CIFAR10_MD5   a mirror of the official archive, and its md5
exit status: 0 done, 1 a run or cell failed (or the disk filled), 2 bad input, 3 not supported on this machine,
4 busy (another process holds the run), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); after 1, 130 and 143
the same command resumes"""


def _train_epilog() -> str:
    from bench.spec import field_help

    return "\n".join([
        "examples:",
        "  fdabnn train backend=torch estimator=fda n=9 noise=true epochs=1 data.subset=100",
        "  fdabnn train --spec my.toml precision=bf16 train.batch_size=256",
        "spec fields (key=value, dotted; a field's aliases after its name; 'none' for none):",
        *field_help(),
        ENVIRONMENT])


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate one spec (resumes an interrupted run)",
                       description="Train a binarized ResNet-20 on CIFAR-10 and evaluate it after every epoch. "
                                   "Run the same command again to resume an interrupted run.",
                       epilog=_train_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="spec fields (dotted) or aliases")
    p.add_argument("--spec", type=Path, help="a TOML or YAML spec file; overrides apply on top")
    p.add_argument("--data-root", help="CIFAR-10 location (default: $CIFAR10_ROOT, else download)")
    p.add_argument("--run-dir", type=Path, help="where to write the run (default: results/runs/<label>-<hash>)")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from bench.spec import load_spec
    from bench.training import train

    overrides = list(args.overrides) + ([f"data.root={args.data_root}"] if args.data_root else [])
    spec = load_spec(args.spec, overrides)
    record = train(spec, args.run_dir)
    print(record["final"])
    if record["status"] != "finished":
        print(f"error: run {record['status']}: {record['reason']}", file=sys.stderr)
        return 1
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint; prints the model zoo's result dict",
                       description="Evaluate a run directory or checkpoint on the test split and print "
                                   "{'Validation-Loss': ..., 'Top1-Acc': ..., 'Top5-Acc': ...}: all 10,000 images "
                                   "unless the run's spec (or data.test_subset=K) says otherwise. Also accepts the "
                                   "model zoo's eval.py arguments.")
    p.add_argument("checkpoint", nargs="?", type=Path, help="run directory or .pt/.ckpt file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="spec fields for a bare checkpoint")
    p.add_argument("--checkpoint_path", "--checkpoint-path", type=Path, dest="checkpoint_path",
                   help="model zoo spelling of the checkpoint argument")
    p.add_argument("--dataset_path", "--data-root", dest="data_root",
                   help="CIFAR-10 location; the model zoo's cifar-10-verify-bin folder works")
    p.add_argument("--platform", choices=["CPU", "GPU", "cpu", "gpu", "cuda"], help="device (model zoo spelling)")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from bench.evaluation import evaluate_checkpoint

    overrides = list(args.overrides)
    if args.checkpoint_path and args.checkpoint:  # argparse put the first key=value in the checkpoint's place
        if "=" not in str(args.checkpoint):
            raise UserError(f"eval: '{args.checkpoint}' given besides --checkpoint_path {args.checkpoint_path}; "
                            "give one checkpoint (spec fields as key=value)")
        overrides.insert(0, str(args.checkpoint))
    elif args.checkpoint and "=" in str(args.checkpoint) and not args.checkpoint.exists():
        raise UserError(f"eval: '{args.checkpoint}' is where the checkpoint goes; give the run directory or "
                        "checkpoint first, then key=value fields")
    checkpoint = args.checkpoint_path or args.checkpoint
    if checkpoint is None:
        raise UserError("eval: no checkpoint given; pass a run directory or --checkpoint_path FILE")
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    if args.platform:
        overrides.append(f"device={'cpu' if args.platform.lower() == 'cpu' else 'cuda'}")
    print(evaluate_checkpoint(checkpoint, overrides))
    return 0


EXAMPLES_ABLATE = """examples:
  fdabnn ablate fourier-terms --profile smoke --backends torch
  fdabnn ablate estimators --seeds 0,1,2 --dry-run           # the plan and its estimate, nothing run
  fdabnn ablate estimators --arch vgg_small --profile smoke    # every cell on VGG-small
  fdabnn ablate estimators --profile paper --device cuda --cells-per-gpu 4
  fdabnn ablate estimators --executor ray --address HEAD:6379  # on a Ray cluster (ray start --head)
studies are the files under ablations/ (format: bench/studies.py); profiles: ablations/profiles.toml.
exit status: 0 when every cell finished, was skipped (backend not installed) or is unsupported
(precision/device this backend cannot run here); 1 when a cell failed or its loss became non-finite;
3 when no cell can run here; 4 when cells were left to another runner holding them."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _add_ablate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablate", help="run a study: every cell in its own process, resumable; then the summary",
                       description="Run every cell (spec x backend x seed) of a study, each in its own process, "
                                   "under results/runs/, on this machine's CPU or GPUs or on a Ray cluster. Run the "
                                   "same command again to finish an interrupted study: finished cells are kept, "
                                   "the others resume. Writes results/summary.md at the end.",
                       epilog=EXAMPLES_ABLATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", help="a study name (ablations/<name>.toml) or the path of a study file")
    p.add_argument("--profile", help="training budget from ablations/profiles.toml: smoke, quick, cpu, gpu or paper "
                                     "(default: paper when a GPU is present and usable, else quick)")
    p.add_argument("--backends", help="comma-separated subset of the study's backends, e.g. torch")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.add_argument("--seeds", help="comma-separated seeds replacing the profile's, e.g. 0,1,2")
    p.add_argument("--arch", help="the network of every cell (model.name): resnet20 or vgg_small (default: the "
                                  "study's, else resnet20)")
    p.add_argument("--dry-run", action="store_true", help="list the cells (done, to run, not runnable here) and "
                                                          "the estimate, then stop")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local: a pool of processes on this machine (default); ray: Ray tasks")
    p.add_argument("--jobs", type=_positive, help="cells at once on a CPU (default 1: two trainings on few cores "
                                                 "slow each other and their step times are recorded as shared)")
    p.add_argument("--cells-per-gpu", type=_positive, default=1, help="cells packed on each visible GPU (default 1)")
    p.add_argument("--address", help="with --executor ray: a running cluster's address (default: start Ray here)")
    p.add_argument("--retries", type=int, default=1, help="attempts again for a cell that failed or whose "
                                                          "process or worker died (default 1)")
    p.set_defaults(func=_cmd_ablate)


def _cmd_ablate(args: argparse.Namespace) -> int:
    from bench.runner import Options, run_ablation
    from bench.studies import parse_arch, parse_seeds

    if args.address and args.executor != "ray":
        raise UserError("--address joins a Ray cluster: add --executor ray (or drop --address)")
    if args.retries < 0:
        raise UserError(f"--retries {args.retries}: expected 0 or more")
    names = tuple(b.strip() for b in args.backends.split(",") if b.strip()) if args.backends else None
    seeds = parse_seeds(args.seeds) if args.seeds else None
    arch = parse_arch(args.arch) if args.arch else None
    options = Options(args.executor, args.jobs, args.cells_per_gpu, args.address, args.retries, args.dry_run)
    return run_ablation(args.study, args.profile, names, args.device, seeds, options=options, arch=arch)


def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain-fp", help="train and store a full-precision checkpoint for init.from",
                       description="Train the full-precision twin (model.binarize=false) of a network at the "
                                   "profile's pretraining budget (ablations/profiles.toml: its spec, then its "
                                   "`pretrain` table), as a cell of the study `pretrain-fp` with a record like any "
                                   "run; resumable. Then init.from = \"pretrain-fp:<profile>\" (in a study: "
                                   "\"pretrain-fp\") starts a run of that network and backend from it.")
    p.add_argument("--arch", default="resnet20", help="the network: resnet20 (default) or vgg_small")
    p.add_argument("--profile", help="the budget (default: as fdabnn ablate chooses it)")
    p.add_argument("--backends", help="comma-separated, e.g. torch (default: both)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default: auto)")
    p.set_defaults(func=_cmd_pretrain)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from bench import store
    from bench.init import pretrain
    from bench.init.reference import PRETRAIN
    from bench.runner import run_ablation
    from bench.studies import load_profiles, parse_arch

    arch = parse_arch(args.arch)
    names = tuple(b.strip() for b in args.backends.split(",") if b.strip()) if args.backends else None
    profile = load_profiles().pick(args.profile, args.device)
    status = run_ablation(pretrain.study(), profile.name, device=args.device,
                          cells_of=lambda chosen: pretrain.cells(chosen, arch, names, args.device))
    for cell in pretrain.cells(profile, arch, names, args.device):
        run_dir = store.results_root() / "runs" / cell.run_id
        if (store.read_record(run_dir) or {}).get("status") == "finished":
            print(f"{cell.spec.backend} {arch}: {run_dir}")
    print(f'init.from = "{PRETRAIN}:{profile.name}" names it (in a study of profile {profile.name}: "{PRETRAIN}")')
    return status


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="tabulate every record: results/summary.md, results/<study>.csv, plots",
                       description="Read every run record under results/runs/ (FDABNN_RESULTS to change), "
                                   "aggregate over seeds and write results/summary.md, one CSV per study and PNG "
                                   "plots next to them.")
    p.add_argument("--import", dest="imports", type=Path, action="append", default=[], metavar="ARCHIVE",
                   help="first fold in the records of a GPU check's archive (gpu-check.tar.gz; repeatable)")
    p.add_argument("--allow-rehearsal", action="store_true", help=argparse.SUPPRESS)  # tests fold rehearsals
    p.set_defaults(func=_cmd_summary)


def _cmd_summary(args: argparse.Namespace) -> int:
    from bench import store
    from bench.gpu_check.archive import fold
    from bench.report import write_summary

    for archive in args.imports:
        for line in fold(archive, store.results_root(), args.allow_rehearsal):
            print(line)
    for path in write_summary():
        print(path)
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="time every estimator's train step and eval throughput (a suite)",
                       description="Run a benchmark suite (bench/suites/<name>.toml): per backend, precision, "
                                   "batch and compile flag, the median train-step time of every estimator and "
                                   "the eval throughput, on real CIFAR-10 batches. Records go to results/bench/.")
    p.add_argument("--suite", default="cpu", help="suite name: cpu or gpu (default cpu)")
    p.add_argument("--backends", help="comma-separated subset of the suite's backends")
    p.add_argument("--budget-s", type=float, help="stop starting new groups after this many seconds")
    p.add_argument("--fresh", action="store_true", help="measure again groups that already have records")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from bench.benchmark import require_device, run_suite
    from bench.suite import load_suite

    suite = load_suite(args.suite)
    require_device(suite)
    chosen = args.backends.split(",") if args.backends else None
    return run_suite(args.suite, chosen, fresh=args.fresh, budget_s=args.budget_s)


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a checkpoint between PyTorch (.pt) and MindSpore (.ckpt)",
                       description="Write SRC's model weights in the other backend's format (the suffix of DST "
                                   "says which), through the model zoo's parameter names. A name or shape that "
                                   "does not match is refused with the list of what did not match.")
    p.add_argument("src", type=Path, help="a .pt, .pth or .ckpt checkpoint (the model zoo's fdabnn.ckpt works)")
    p.add_argument("dst", type=Path, help="the checkpoint to write, .pt or .ckpt")
    p.set_defaults(func=_cmd_convert)


def _cmd_convert(args: argparse.Namespace) -> int:
    from bench.convert import convert_checkpoint

    convert_checkpoint(args.src, args.dst)
    print(f"wrote {args.dst}")
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="fdabnn", description="Binary neural network sign-estimator benchmark and "
                                "ablation suite (FDA-BNN, STE, ApproxSign) on PyTorch and MindSpore.",
                                epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_eval, _add_ablate, _add_pretrain, _add_summary, _add_bench, _add_convert):
        add(sub)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's kill, `kill PID`), raised where the process is, so that it ends like
    Ctrl-C: children stopped, partial files removed, the last checkpoint kept."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


# a path the system refuses: bad input, named with the system's reason
_BAD_PATH = (errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EROFS, errno.ELOOP, errno.EEXIST)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        what, status = ("terminated (SIGTERM)", 128 + signal.SIGTERM) if isinstance(exc, Terminated) else \
            ("interrupted", 130)
        print(f"{what}: run the same command again to resume from the last finished epoch", file=sys.stderr)
        return status
    except Exception as exc:  # a failure the suite did not foresee: still one line, the traceback on request
        if os.environ.get("FDABNN_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.errno in _BAD_PATH:
            print(f"error: {exc.filename or 'a path'}: {exc.strerror}; give a path this system accepts (each name "
                  "at most 255 bytes, folders where folders are expected, and writable)", file=sys.stderr)
            return 2
        print(f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (unexpected; "
              "FDABNN_DEBUG=1 shows the traceback; please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
