"""MindSpore backend: the model zoo's binarized ResNet-20 (research/cv/FDA-BNN) behind backends.base.

MindSpore's bundled oneDNN takes a reference code path on AVX-512 CPUs unless capped (about 60 s
instead of 2.5 s a training step at batch 128); the cap is read when the library loads, so it is set
here, before anything in this package imports mindspore, and recorded by `versions()`.
"""
import os

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
# MindSpore logs warnings (e.g. every missing GPU/Ascend plugin) to stderr at import; errors only.
os.environ.setdefault("GLOG_v", "3")
