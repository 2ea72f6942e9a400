"""Starting a run from another run's weights (spec field init.from), as BiBench starts every binarized
CIFAR-10 run from a full-precision checkpoint; the FDA paper and IR-Net train from scratch.

- reference.py: what init.from may say (a path, or pretrain-fp[:<profile>]) and the label it gives
  (`-from-fp`, `-from-<name>`); pure, no file is read.
- pretrain.py: the full-precision checkpoints `make pretrain-fp` trains through the ablation runner,
  and where in the results store each profile's lives.
- source.py: a reference resolved to one checkpoint file, read through the interface's parameter
  names (either backend's format, as `fdabnn convert` reads it), checked against the run's network
  and loaded into a built backend; what the run records of it (init.json, record["init"]).
"""
