"""The GPU check: one command that a GPU machine which has never seen this repository runs with its
own python3, within one deadline, and that brings back everything it measured.

    python3 -m bench.gpu_check --out DIR            (carry .data/ and .whl/: `make gpu-data gpu-wheels`)

In order, so that the most valuable numbers come first:
1. the captured and the eager step of the core estimators, bf16, batch 128, interleaved in one
   process (the first group of bench/suites/gpu.toml), then the suite's other groups while the
   budget allows, each only if its estimate fits what is left;
2. the GPU tests (`pytest -m gpu`): captured steps equal to eager ones, learning, captured
   evaluation, no host syncs;
3. a linear classifier on the raw pixels, the floor a training must beat (floor.py);
4. a fresh training of FDA n 9 -> 18 with the noise module, bf16, all 50,000 images, for as many
   epochs as the deadline leaves (at least 15), top-1 after every epoch.
Each step runs in a child process whose output is printed as it comes; the deadline (default 540 s)
kills what still runs and leaves time for the archive. DIR receives gpu-check.tar.gz (the raw
records, the log, the tests' JUnit XML, a manifest of the code and machine), verdict.txt (one line
per check: measured, target, met or missed) and gpu-check.log; the archive is rewritten after every
step, so what had finished when the deadline hit is in it. Nothing is written into the
repository's results/: `fdabnn summary --import DIR/gpu-check.tar.gz` on the development machine
folds the records in (archive.py).

`--rehearse` runs the same on a CPU (everything but the CUDA-only parts, at toy sizes): `make
gpu-rehearsal` does so in a virtual environment with the GPU machine's package set.
"""
