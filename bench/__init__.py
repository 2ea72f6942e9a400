"""fdabnn-bench: the framework-neutral half of the suite (spec, data, training loop, timing,
results store, reports, CLI). Framework code lives in `backends/`."""

__version__ = "0.1.0"
