"""fdabnn-bench: the framework-neutral half of the suite (spec, data, training loop, timing,
results store, reports, CLI). Framework code lives in `backends/`.

The one setting of the process environment the suite makes, here because every entry point (the
CLI, a launched cell or bench group, the tests, the backends) imports this package before any
framework: MindSpore's bundled oneDNN takes a reference code path on AVX-512 CPUs unless capped
(about 60 s instead of 2.5 s a training step at batch 128), and reads the cap when the library
loads. PyTorch's oneDNN reads the same variable, so both frameworks run their CPU kernels at the
same ISA and compare like for like. Every run records it (bench.environment.RELEVANT_ENV).
"""
import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

__version__ = "0.1.0"
