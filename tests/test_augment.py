"""The host-side batch plan, the reference augmentation, and stratified subsets."""
from __future__ import annotations

import numpy as np
import pytest

import synthetic_data as synthetic
from bench.data.augment import NORMALIZATION, PAD, AugParams, augment_numpy, normalize_numpy, plan_epoch
from bench.data.dataset import Cifar10Arrays, DataSource

IMAGES = synthetic.random_splits(per_class=1).train_x[:6]  # (6, 32, 32, 3) random uint8


def planned(num_train: int, batch_size: int, seed: int, epoch: int, augment: bool = True,
            max_steps: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A whole epoch's plan as (indices, offsets, flips), each concatenated over its steps."""
    steps = list(plan_epoch(num_train, batch_size, seed, epoch, augment, max_steps))
    return (np.concatenate([idx for idx, _ in steps]), np.concatenate([aug.offsets for _, aug in steps]),
            np.concatenate([aug.flips for _, aug in steps]))


def test_plan_is_a_function_of_seed_and_epoch() -> None:
    for got, again in zip(planned(1000, 100, seed=3, epoch=7), planned(1000, 100, seed=3, epoch=7)):
        np.testing.assert_array_equal(got, again)


@pytest.mark.parametrize("other", [{"seed": 3, "epoch": 8}, {"seed": 4, "epoch": 7}])
def test_plan_differs_across_epochs_and_seeds(other: dict[str, int]) -> None:
    indices, offsets, _ = planned(1000, 100, seed=3, epoch=7)
    other_indices, other_offsets, _ = planned(1000, 100, **other)
    assert not np.array_equal(indices, other_indices)
    assert not np.array_equal(offsets, other_offsets)


def test_each_index_at_most_once_per_epoch_and_last_partial_batch_dropped() -> None:
    indices, offsets, flips = planned(1005, 100, seed=0, epoch=0)
    assert len(indices) == 1000 == len(np.unique(indices))
    assert indices.min() >= 0 and indices.max() < 1005
    assert offsets.shape == (1000, 2) and flips.shape == (1000,)


def test_max_steps_caps_the_epoch() -> None:
    assert len(planned(1000, 100, seed=0, epoch=0, max_steps=3)[0]) == 300


def test_offsets_span_the_padding_and_about_half_flip() -> None:
    _, offsets, flips = planned(20_000, 500, seed=1, epoch=0)
    assert offsets.min() == 0 and offsets.max() == 2 * PAD
    assert set(np.unique(offsets)) == set(range(2 * PAD + 1))
    assert abs(flips.mean() - 0.5) < 0.02


def test_without_augmentation_the_plan_is_the_identity() -> None:
    _, offsets, flips = planned(1000, 100, seed=0, epoch=0, augment=False)
    assert (offsets == PAD).all() and not flips.any()


def test_batch_larger_than_the_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="batch size 200 exceeds the 100 training images"):
        next(plan_epoch(100, 200, seed=0, epoch=0, augment=True))


@pytest.mark.parametrize("normalization", sorted(NORMALIZATION))
def test_identity_augmentation_is_normalization(normalization: str) -> None:
    got = augment_numpy(IMAGES, AugParams.identity(len(IMAGES)), normalization)
    assert got.dtype == np.float32 and got.shape == (6, 3, 32, 32)
    np.testing.assert_array_equal(got, normalize_numpy(IMAGES, normalization))


def test_normalization_by_hand() -> None:
    mean, std = NORMALIZATION["cifar"]
    got = normalize_numpy(IMAGES, "cifar")
    np.testing.assert_allclose(got[2, 1, 5, 7], (IMAGES[2, 5, 7, 1] / 255 - mean[1]) / std[1], rtol=1e-6)


def test_crop_at_the_top_left_corner_shows_the_zero_padding() -> None:
    """Offset (0, 0) puts 4 rows and 4 columns of zero padding at the top and left: zero pixels
    normalise to -mean/std; the rest is the image's top-left 28x28."""
    mean, std = (np.asarray(v, np.float32) for v in NORMALIZATION["imagenet"])
    aug = AugParams(np.zeros((6, 2), np.int64), np.zeros(6, bool))
    got = augment_numpy(IMAGES, aug, "imagenet")
    padding = (-mean / std)[None, :, None]
    np.testing.assert_allclose(got[:, :, :PAD, :], np.broadcast_to(padding[..., None], (6, 3, PAD, 32)), rtol=1e-6)
    np.testing.assert_allclose(got[:, :, :, :PAD], np.broadcast_to(padding[..., None], (6, 3, 32, PAD)), rtol=1e-6)
    np.testing.assert_array_equal(got[:, :, PAD:, PAD:], normalize_numpy(IMAGES, "imagenet")[:, :, :-PAD, :-PAD])


def test_crop_at_the_bottom_right_corner() -> None:
    aug = AugParams(np.full((6, 2), 2 * PAD, np.int64), np.zeros(6, bool))
    got = augment_numpy(IMAGES, aug, "cifar")
    np.testing.assert_array_equal(got[:, :, :-PAD, :-PAD], normalize_numpy(IMAGES, "cifar")[:, :, PAD:, PAD:])


def test_flip_mirrors_columns() -> None:
    flipped = AugParams(np.full((6, 2), PAD, np.int64), np.ones(6, bool))
    np.testing.assert_array_equal(augment_numpy(IMAGES, flipped, "cifar"), normalize_numpy(IMAGES, "cifar")[..., ::-1])


def test_flip_applies_to_the_crop_per_image() -> None:
    offsets = np.array([[0, 0], [8, 1], [3, 5], [4, 4], [1, 8], [6, 2]], np.int64)
    flips = np.array([True, False, True, False, True, True])
    got = augment_numpy(IMAGES, AugParams(offsets, flips), "cifar")
    unflipped = augment_numpy(IMAGES, AugParams(offsets, np.zeros(6, bool)), "cifar")
    np.testing.assert_array_equal(got[flips], unflipped[flips][..., ::-1])
    np.testing.assert_array_equal(got[~flips], unflipped[~flips])


def _arrays(per_class: int) -> Cifar10Arrays:
    splits = synthetic.random_splits(per_class)
    return Cifar10Arrays(splits.train_x, splits.train_y, splits.test_x, splits.test_y,
                         DataSource(path="synthetic", format="python-batches", checksum="0" * 64, lossy=False))


def test_subsample_takes_k_per_class_deterministically() -> None:
    full = _arrays(per_class=20)
    sub = full.subsample(5, 3, seed=7)
    assert np.bincount(sub.train_y).tolist() == [5] * 10 and np.bincount(sub.test_y).tolist() == [3] * 10
    assert sub.subset == {"train": 5, "test": 3}
    again = full.subsample(5, 3, seed=7)
    np.testing.assert_array_equal(sub.train_x, again.train_x)
    np.testing.assert_array_equal(sub.test_x, again.test_x)
    assert not np.array_equal(full.subsample(5, 3, seed=8).train_x, sub.train_x)


def test_subsample_keeps_images_with_their_labels() -> None:
    full = _arrays(per_class=20)
    sub = full.subsample(5, None, seed=0)
    rows = {full.train_x[i].tobytes(): full.train_y[i] for i in range(len(full.train_y))}
    assert all(rows[x.tobytes()] == y for x, y in zip(sub.train_x, sub.train_y))
    assert len(sub.test_y) == len(full.test_y) and sub.subset == {"train": 5, "test": None}


def test_subsample_larger_than_a_class_is_refused() -> None:
    with pytest.raises(ValueError, match="subset of 21 per class exceeds the 20 images"):
        _arrays(per_class=20).subsample(21, None)
