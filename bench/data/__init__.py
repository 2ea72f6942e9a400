"""CIFAR-10 for both backends: find or download, decode once, cache as uint8, plan batches."""
