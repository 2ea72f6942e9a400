"""The `fdabnn` command. Each subcommand is a thin shell over one module of the suite."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# MindSpore reads this when it loads; set before any subcommand may import it (see backends/mindspore).
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

from bench.errors import UserError  # noqa: E402

EXAMPLES_TRAIN = """examples:
  fdabnn train backend=torch estimator=fda n=9 noise=true epochs=1 data.subset=100
  fdabnn train --spec my.toml precision=bf16 train.batch_size=256
keys: backend device precision estimator.{name,clip,n,n_end,omega,form} noise.{enabled,k,alpha,...}
      model.{scaling} optim.{name,lr,momentum,weight_decay,schedule} train.{epochs,batch_size,seed,...}
      data.{root,subset,test_subset,normalization,augment} runtime.{compile,mode,channels_last,...}
aliases: n n_end clip noise alpha epochs batch_size seed lr subset compile mode"""


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and evaluate one spec (resumes an interrupted run)",
                       description="Train a binarized ResNet-20 on CIFAR-10 and evaluate it after every epoch. "
                                   "Run the same command again to resume an interrupted run.",
                       epilog=EXAMPLES_TRAIN, formatter_class=argparse.RawDescriptionHelpFormatter)
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
                       description="Evaluate a run directory or checkpoint on all 10,000 test images and print "
                                   "{'Validation-Loss': ..., 'Top1-Acc': ..., 'Top5-Acc': ...}. Also accepts the "
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

    checkpoint = args.checkpoint_path or args.checkpoint
    if checkpoint is None:
        raise UserError("eval: no checkpoint given; pass a run directory or --checkpoint_path FILE")
    overrides = list(args.overrides)
    if args.data_root:
        overrides.append(f"data.root={args.data_root}")
    if args.platform:
        overrides.append(f"device={'cpu' if args.platform.lower() == 'cpu' else 'cuda'}")
    print(evaluate_checkpoint(checkpoint, overrides))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fdabnn", description="Binary neural network sign-estimator benchmark and "
                                "ablation suite (FDA-BNN, STE, ApproxSign) on PyTorch and MindSpore.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_train, _add_eval):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last finished epoch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
