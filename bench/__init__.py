"""fdabnn-bench: the framework-neutral half of the suite (spec, data, training loop, timing,
results store, reports, CLI). Framework code lives in `backends/`.

The package sets nothing in the process environment: oneDNN's ISA cap is MindSpore's alone
(bench/isa.py; backends/mindspore sets it when imported).
"""
__version__ = "0.1.0"
