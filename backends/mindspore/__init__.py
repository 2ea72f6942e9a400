"""MindSpore backend: the model zoo's binarized ResNet-20 (research/cv/FDA-BNN) behind backends.base.

Importing this package sets MindSpore's process environment before anything in it imports
mindspore: the oneDNN ISA cap (bench/__init__.py sets it, for both frameworks) and the log level.
"""
import os

import bench  # noqa: F401  (the oneDNN ISA cap)

# MindSpore logs warnings (e.g. every missing GPU/Ascend plugin) to stderr at import; errors only.
os.environ.setdefault("GLOG_v", "3")
