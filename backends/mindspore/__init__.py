"""MindSpore backend: the networks of bench/networks (the model zoo's ResNet-20, VGG-small) behind backends.base.

Importing this package sets MindSpore's process environment before anything in it imports
mindspore: the oneDNN ISA cap (bench/isa.py: MindSpore's processes only) and the log level.
"""
import os

from bench import isa

isa.cap_for_mindspore()

# MindSpore logs warnings (e.g. every missing GPU/Ascend plugin) to stderr at import; errors only.
os.environ.setdefault("GLOG_v", "3")
