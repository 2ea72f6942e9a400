"""SGD steps of the MindSpore and PyTorch backends in lock step, for the parity tests of every network:
before each step after the first, MindSpore's weights and velocities are copied into torch, so every
step starts from one state (a binary network's free trajectories part after a few steps under
rounding; tests/test_mindspore_parity.py says why)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from backends.pytorch.names import torch_to_zoo
from bench.data.augment import batch_plan, plan_epoch
from bench.schedules import Schedules


def copy_momentum(ms_backend, torch_backend) -> None:
    """MindSpore's SGD velocities (optimizer.accum.<zoo name>) into torch's momentum buffers."""
    training = ms_backend._training_state()
    zoo = torch_to_zoo(torch_backend.model)
    for name, param in torch_backend.model.named_parameters():
        velocity = training[f"optimizer.accum.{zoo[name]}"].asnumpy()
        torch_backend.optimizer.state[param]["momentum_buffer"] = torch.from_numpy(velocity.copy())


def sgd_in_lock_step(ms_backend, torch_backend, train_images: int, batch: int, steps: int,
                     measure: Callable[[np.ndarray, np.ndarray], float]) -> tuple[list, list]:
    """Per step: the (MindSpore, torch) losses, and the worst (measure(ms update, torch update), name)
    over the tensors the step changed."""
    sched = Schedules(ms_backend.spec, train_images // batch)
    losses, updates = [], []
    for step, (indices, aug) in enumerate(plan_epoch(train_images, batch, 1, 0, True, steps)):
        if step:
            torch_backend.load_state_numpy(ms_backend.state_numpy())
            copy_momentum(ms_backend, torch_backend)
        start = ms_backend.state_numpy()
        pair_losses = []
        for backend in (ms_backend, torch_backend):
            backend.set_estimator_values(sched.estimator_values(0))
            backend.train_step(batch_plan(indices, aug), sched.lr(step), sched.alpha(step))
            pair_losses.append(backend.pop_stats().loss)
        losses.append(pair_losses)
        ms_state, torch_state = ms_backend.state_numpy(), torch_backend.state_numpy()
        updates.append(max((measure(ms_state[k] - start[k], torch_state[k] - start[k]), k)
                           for k in start if np.any(torch_state[k] != start[k])))
    return losses, updates
