"""The learning-rate and regularizer schedules: cosine with warmup over the run's budget (epochs or time,
whichever ends first), plateau scheduling that waits for learning, and a regularizer start tied to it."""

from __future__ import annotations

import math

import pytest
import torch

from tiny import tiny_model_config
from stanet.model import build_model
from training.config import TrainConfig
from training.losses import LossWeights
from training.lr_schedule import CosineSchedule, cosine_scale
from training.optim import build_optimizer
from training.regularizer_schedule import (early_pool_weight, learning_started, open_mask_weight, regularizer_start,
                                          selectable, warmed_up)
from training.run_state import RunState


def test_cosine_warms_up_then_falls_to_its_floor():
    config = TrainConfig(epochs=10, lr_schedule="cosine", lr_warmup_epochs=2, lr_floor=0.1)
    assert cosine_scale(config, 1.0, 0.1) == pytest.approx(0.5)  # half-way up the warmup
    assert cosine_scale(config, 2.0, 0.2) == pytest.approx(1.0)  # warmup done: the top of the cosine
    after = [cosine_scale(config, e, e / 10) for e in (2, 4, 6, 8, 10)]
    assert all(b < a for a, b in zip(after, after[1:])), after
    assert after[-1] == pytest.approx(0.1)  # the floor at the end of the budget
    assert cosine_scale(config, 6.0, 0.6) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))


def test_cosine_follows_the_time_budget_when_it_ends_first():
    """A time-capped run has annealed when its time is up, at whatever epoch that is."""
    config = TrainConfig(epochs=24, lr_schedule="cosine", max_minutes=1.0, lr_floor=0.05)
    model = build_model(tiny_model_config())
    optimizer = build_optimizer(model, config)
    schedule = CosineSchedule(optimizer, config, started=0.0)  # monotonic time 0: the budget is long spent
    schedule(3.0)
    assert schedule.budget_used(3.0) == 1.0
    assert optimizer.param_groups[0]["lr"] == pytest.approx(config.lr * 0.05)


def test_cosine_keeps_the_ratio_of_parameter_groups():
    config = TrainConfig(epochs=4, lr=1e-2, lr_schedule="cosine", backbone_lr_multiplier=0.1)
    optimizer = build_optimizer(build_model(tiny_model_config()), config)
    schedule = CosineSchedule(optimizer, config, started=float("inf"))  # time counts nothing
    schedule(2.0)
    head, trunk = optimizer.param_groups
    assert trunk["lr"] == pytest.approx(head["lr"] * 0.1) and head["lr"] < 1e-2
    reloaded = build_optimizer(build_model(tiny_model_config()), config)
    reloaded.load_state_dict(optimizer.state_dict())  # a resumed run keeps the base rates
    assert [g["base_lr"] for g in reloaded.param_groups] == [1e-2, 1e-3]


def test_learning_started_is_relative_to_chance():
    config = TrainConfig(learning_threshold=0.25)
    assert not learning_started(config, 0.30, num_classes=4)  # chance 0.25, the bar 0.4375
    assert learning_started(config, 0.44, num_classes=4)
    assert not learning_started(config, 0.6, num_classes=2) and learning_started(config, 0.625, num_classes=2)


def test_learning_start_moves_the_regularizers_and_model_selection():
    config = TrainConfig(loss=LossWeights(mask_area=0.1), regularizer_start="learning",
                         regularizer_start_epoch=1, regularizer_warmup_epochs=2)
    assert regularizer_start(config, {"learned_epoch": None}) == math.inf
    start = regularizer_start(config, {"learned_epoch": 4})
    assert start == 4.0
    assert warmed_up(config, 30.0, math.inf).mask_area == 0.0  # never learned: cross-entropy only
    assert warmed_up(config, 5.0, start).mask_area == pytest.approx(0.05)
    assert [selectable(config, e, start) for e in (5, 6)] == [False, True]
    assert regularizer_start(config, {"learned_epoch": 0}) == 1.0  # not before regularizer_start_epoch
    fixed = TrainConfig(loss=LossWeights(mask_area=0.1), regularizer_start_epoch=11)
    assert regularizer_start(fixed, {"learned_epoch": 2}) == 11  # "epoch": the signal is not used


def _state(config: TrainConfig) -> RunState:
    model = build_model(tiny_model_config())
    optimizer = build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=config.lr_factor,
                                                           patience=config.lr_patience)
    return RunState(model=model, optimizer=optimizer, scheduler=scheduler)


@pytest.mark.parametrize("after_learning", [False, True])
def test_plateau_waits_for_learning_when_asked(after_learning):
    """At chance for six epochs: the plain plateau schedule has cut the rate twice, the waiting one kept it;
    once learning shows, the waiting one counts bad epochs too."""
    config = TrainConfig(lr=1e-3, lr_patience=1, lr_factor=0.5, plateau_after_learning=after_learning)
    state = _state(config)
    for _ in range(6):
        state.end_epoch(config, {}, {"loss": 2.0, "accuracy": 0.25}, elapsed_s=0.0, num_classes=4)
    lr = state.optimizer.param_groups[0]["lr"]
    assert (lr == 1e-3) == after_learning and state.progress["learned_epoch"] is None
    state.end_epoch(config, {}, {"loss": 2.0, "accuracy": 0.9}, elapsed_s=0.0, num_classes=4)
    assert state.progress["learned_epoch"] == 7
    for _ in range(3):
        state.end_epoch(config, {}, {"loss": 2.0, "accuracy": 0.9}, elapsed_s=0.0, num_classes=4)
    assert state.optimizer.param_groups[0]["lr"] < lr


def test_cosine_does_not_step_the_plateau_scheduler():
    config = TrainConfig(lr_schedule="cosine", lr_patience=0)
    state = _state(config)
    for _ in range(3):
        state.end_epoch(config, {}, {"loss": 2.0, "accuracy": 0.25}, elapsed_s=0.0, num_classes=4)
    assert state.optimizer.param_groups[0]["lr"] == config.lr


@pytest.mark.parametrize("fields,message", [
    ({"lr_schedule": "step"}, "lr_schedule must be one of plateau, cosine"),
    ({"lr_warmup_epochs": 2}, "used by lr_schedule=cosine only"),
    ({"lr_schedule": "cosine", "lr_floor": 1.5}, "lr_floor must be in [0, 1]"),
    ({"lr_schedule": "cosine", "plateau_after_learning": True}, "plateau_after_learning needs lr_schedule=plateau"),
    ({"regularizer_start": "loss"}, "regularizer_start must be one of epoch, learning"),
    ({"learning_threshold": 0.0}, "learning_threshold must be in (0, 1)"),
    ({"early_cell_pool": "median"}, "early_cell_pool must be empty or one of average, max, max_average"),
])
def test_bad_schedule_settings_are_named(fields, message):
    with pytest.raises(ValueError, match="invalid TrainConfig") as caught:
        TrainConfig(**fields)
    assert message in str(caught.value)


def test_early_cell_pooling_rides_the_regularizer_ramp_down_and_gates_model_selection():
    """Early pooling alone until the regularizers start, blended out over their warm-up, gone at full weight;
    best.pt only from then, even without any regularizer (the pooling alone is reason to wait)."""
    config = TrainConfig(early_cell_pool="max", regularizer_start_epoch=11, regularizer_warmup_epochs=3)
    assert [early_pool_weight(config, e) for e in (0.0, 10.9, 11.0)] == [1.0, 1.0, 1.0]
    assert early_pool_weight(config, 12.5) == pytest.approx(0.5)
    assert early_pool_weight(config, 14.0) == 0.0 and early_pool_weight(config, 30.0) == 0.0
    assert early_pool_weight(config, 12.5, start_epoch=float("inf")) == 1.0  # "learning" start not seen yet
    assert early_pool_weight(TrainConfig(regularizer_start_epoch=11), 0.0) == 0.0  # no early pooling
    no_regularizers = TrainConfig(early_cell_pool="max", regularizer_start_epoch=2, regularizer_warmup_epochs=1,
                                  loss=LossWeights(mask_area=0.0, total_variation=0.0, contrast=0.0,
                                                   unimodality=0.0, temporal_entropy=0.0))
    assert [selectable(no_regularizers, e) for e in (1, 2, 3)] == [False, False, True]


def test_the_open_mask_rides_the_regularizer_ramp_down_and_gates_model_selection():
    """Held open until the regularizers start, blended in over their warm-up, acting alone at full weight;
    best.pt only from then, even without any regularizer."""
    config = TrainConfig(early_open_mask=True, regularizer_start_epoch=11, regularizer_warmup_epochs=3)
    assert [open_mask_weight(config, e) for e in (0.0, 10.9, 11.0)] == [1.0, 1.0, 1.0]
    assert open_mask_weight(config, 12.5) == pytest.approx(0.5)
    assert open_mask_weight(config, 14.0) == 0.0 and open_mask_weight(config, 30.0) == 0.0
    assert open_mask_weight(config, 12.5, start_epoch=float("inf")) == 1.0  # "learning" start not seen yet
    assert open_mask_weight(TrainConfig(regularizer_start_epoch=11), 0.0) == 0.0  # off by default
    no_regularizers = TrainConfig(early_open_mask=True, regularizer_start_epoch=2, regularizer_warmup_epochs=1,
                                  loss=LossWeights())
    assert [selectable(no_regularizers, e) for e in (1, 2, 3)] == [False, False, True]
