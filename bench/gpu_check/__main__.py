"""`python3 -m bench.gpu_check --out DIR [--deadline-s 540] [--rehearse]`: see __init__.py."""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.gpu_check import bootstrap

DEADLINE_S = 540
ARCHIVE_RESERVE_S = 15  # the archive's last rewrite, after the last child is killed
# what the later steps are kept: the GPU tests (a rehearsal's all skip), the floor, and the
# training's MIN_EPOCHS on a GPU (start-up and compiles included); the bench gets the rest, which at
# the default deadline holds the first group's [estimate] (bench/suites/gpu.toml) with room to spare
TESTS_S, REHEARSAL_TESTS_S, FLOOR_S, TRAIN_MIN_S = 150, 30, 60, 90


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m bench.gpu_check", description=(
        "On a GPU machine that has never seen this repository: the captured and eager step times of the core "
        "estimators, the GPU tests and a fresh training, under one deadline; the raw records come back as one "
        "archive in --out (fold them in with `fdabnn summary --import`). Carry .data/ and .whl/."))
    p.add_argument("--out", type=Path, required=True, help="where gpu-check.tar.gz, verdict.txt and gpu-check.log go")
    p.add_argument("--deadline-s", type=float, default=DEADLINE_S,
                   help=f"everything ends within this many seconds (default {DEADLINE_S})")
    p.add_argument("--rehearse", action="store_true",
                   help="rehearse on this machine's CPU: everything but the CUDA-only parts, at toy sizes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started, started_wall = time.monotonic(), time.time()
    deadline = started + args.deadline_s
    site = Path(tempfile.mkdtemp(prefix="gpu-check-site-"))
    try:
        wheels = bootstrap.install_wheels(site)
        bootstrap.preflight(args.rehearse, args.out)
    except bootstrap.Missing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from bench.gpu_check import archive
    from bench.gpu_check.stages import Check, Verdict

    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    check = Check(work, work / "gpu-check.log", args.rehearse)
    verdicts = []

    def left() -> float:
        return deadline - time.monotonic() - ARCHIVE_RESERVE_S

    def save() -> None:
        text = "\n".join(v.line for v in verdicts) + "\n"
        (work / "verdict.txt").write_text(text)
        archive.write(args.out, work, {archive.MANIFEST: archive.manifest(started_wall, args.deadline_s,
                                                                           args.rehearse, wheels)})
        shutil.copy(work / "verdict.txt", args.out / "verdict.txt")
        if check.log.exists():
            shutil.copy(check.log, args.out / "gpu-check.log")

    print(f"gpu check: {'rehearsal on the CPU' if args.rehearse else 'GPU'}, deadline {args.deadline_s:.0f} s, "
          f"wheels {', '.join(wheels) or 'none'}, work {work}", flush=True)
    tests_s = REHEARSAL_TESTS_S if args.rehearse else TESTS_S
    steps = [
        ("bench", lambda: check.bench(left() - tests_s - FLOOR_S - TRAIN_MIN_S)),
        ("tests", lambda: check.tests(min(tests_s, left() - FLOOR_S - TRAIN_MIN_S))),
        ("training", lambda: check.train(left(), check.floor(min(FLOOR_S, left())))),
    ]
    for name, step in steps:
        if left() <= 5:
            verdicts.append(Verdict.not_run(name))
        else:
            print(f"\n==== {name} ({left():.0f} s left)", flush=True)
            verdicts.extend(step())
        save()
    print("\ngpu check verdict:\n" + "\n".join(v.line for v in verdicts), flush=True)
    print(f"archive: {args.out / archive.ARCHIVE} ({time.monotonic() - started:.0f} s)", flush=True)
    return 0 if all(v.met for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
