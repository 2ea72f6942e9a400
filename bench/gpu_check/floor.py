"""The floor the check's training must beat: a linear classifier of the raw pixels.

The test set is class-balanced (1,000 images a class), so chance, and any answer that ignores the
image, is 10%. A broken training does better than that as soon as anything learns: the first
convolution and the classifier are full precision and train whatever the sign estimator does. What
a broken estimator cannot give is features, and without them the network is at best a linear map
of its input. So the floor is that map's accuracy, fitted here on the same training images by
ridge regression onto one-hot labels (least squares, closed form): on CIFAR-10 about 40%, while the
binarized ResNet-20 reaches far above it within a few epochs when its estimator works.
"""
from __future__ import annotations

import time

import numpy as np

RIDGE = 0.1  # times the mean squared pixel: a light ridge (pixels are strongly correlated)


def linear_floor(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> dict:
    """Top-1 on the test images of the ridge-regression linear classifier of the training pixels."""
    start = time.perf_counter()

    def features(x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
        return np.hstack([flat, np.ones((len(x), 1), np.float32)])

    x = features(train_x)
    gram = (x.T @ x).astype(np.float64)
    gram += RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
    targets = np.eye(10, dtype=np.float32)[train_y]
    weights = np.linalg.solve(gram, (x.T @ targets).astype(np.float64)).astype(np.float32)
    top1 = float(np.mean((features(test_x) @ weights).argmax(axis=1) == test_y))
    return {"top1": top1, "train_images": len(train_y), "test_images": len(test_y), "ridge": RIDGE,
            "seconds": time.perf_counter() - start, "chance": 1 / 10}


if __name__ == "__main__":
    import json
    import sys

    from bench.data.cifar10 import load_cifar10

    data = load_cifar10(download=False)
    result = linear_floor(data.train_x, data.train_y, data.test_x, data.test_y)
    print(json.dumps({**result, "data": data.source.to_dict()}))
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as out:
            json.dump({**result, "data": data.source.to_dict()}, out, indent=1)
