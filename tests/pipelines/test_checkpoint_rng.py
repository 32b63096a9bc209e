"""RNG states in a checkpoint: a GPU worker keeps its own device's CUDA state, and a resume onto a
node with another number of visible GPUs still finds a state to restore. CPU streams restore
exactly (the resume-equality tests rely on it; here against values drawn by hand)."""

from __future__ import annotations

import random

import numpy as np
import torch

from pipelines.train.checkpointing import device_rng_state, rng_state, set_rng_state


def test_one_saved_state_serves_any_device_count():
    mine = torch.arange(4, dtype=torch.uint8)
    assert device_rng_state(mine, 0) is mine and device_rng_state(mine, 3) is mine


def test_a_per_device_list_from_a_bigger_node_restores_this_devices_entry():
    states = [torch.full((4,), i, dtype=torch.uint8) for i in range(8)]  # saved where 8 GPUs were visible
    assert torch.equal(device_rng_state(states, 2), states[2])
    assert torch.equal(device_rng_state(states[:1], 5), states[0])  # saved with 1 visible, now device 5


def test_cpu_streams_restore_exactly():
    state = rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.random(), np.random.rand(), torch.rand(())  # move every stream on
    set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected
