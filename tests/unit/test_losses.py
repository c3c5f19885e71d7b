"""Regularizers on hand-computed cases, and their independence of batch size and clip length."""

from __future__ import annotations

import pytest
import torch

from training.losses import LossWeights, attention_loss, contrast, temporal_entropy, total_variation, unimodality


def test_total_variation_hand_computed():
    mask = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])  # (1, 1, 2, 2)
    # vertical pairs: |0-0|, |0-1| ; horizontal pairs: |1-0|, |0-0|  -> 2 / 4
    assert total_variation(mask).item() == pytest.approx(0.5)
    assert total_variation(torch.full((2, 3, 4, 4), 0.7)).item() == 0.0


def test_contrast_hand_computed():
    mask = torch.tensor([[[[0.9, 0.2], [0.5, 0.6]]]])
    # -0.5*0.9 + 0.5*0.2 + 0 (exactly 0.5 is in neither set) - 0.5*0.6, mean over 4 pixels
    assert contrast(mask).item() == pytest.approx((-0.45 + 0.1 - 0.3) / 4)


def test_unimodality_hand_computed():
    assert unimodality(torch.tensor([[[0.25, 0.5, 0.25]]])).item() == 0.0  # log-concave
    bimodal = torch.tensor([[[0.4, 0.1, 0.4, 0.1]]])
    # interior i=1: 0.4*0.4-0.01=0.15 ; i=2: 0.1*0.1-0.16<0 -> 0 ; T^2=16 ; mean over 2 -> 1.2
    assert unimodality(bimodal).item() == pytest.approx(1.2)
    assert unimodality(torch.tensor([[[0.5, 0.5]]])).item() == 0.0  # fewer than 3 frames


def test_temporal_entropy_hand_computed():
    assert temporal_entropy(torch.full((2, 3, 8), 1 / 8)).item() == pytest.approx(1.0)
    assert temporal_entropy(torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])).item() == pytest.approx(0.0, abs=1e-6)
    # two equal peaks out of 4: log 2 / log 4
    assert temporal_entropy(torch.tensor([[[0.5, 0.5, 0.0, 0.0]]])).item() == pytest.approx(0.5, abs=1e-6)


def test_terms_do_not_depend_on_batch_size_or_clip_length():
    torch.manual_seed(0)
    mask = torch.rand(1, 4, 7, 7)
    weights = torch.softmax(torch.randn(1, 4, 4), dim=-1)
    assert total_variation(mask.repeat(5, 1, 1, 1)).item() == pytest.approx(total_variation(mask).item())
    assert contrast(mask.repeat(5, 3, 1, 1)).item() == pytest.approx(contrast(mask).item())
    assert unimodality(weights.repeat(6, 1, 1)).item() == pytest.approx(unimodality(weights).item(), rel=1e-5)
    # The same alternating pattern at twice the clip length gives the same value (1.2 both).
    short = torch.tensor([[[0.4, 0.1, 0.4, 0.1]]])
    long = torch.tensor([[[0.4, 0.1, 0.4, 0.1, 0.4, 0.1, 0.4, 0.1]]]) / 2
    assert unimodality(long).item() == pytest.approx(unimodality(short).item(), rel=1e-5)


def test_weights_switch_terms_and_gradients_flow():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, requires_grad=True)
    mask = torch.rand(3, 5, 6, 6, requires_grad=True)
    steps = torch.softmax(torch.randn(3, 5, 5, requires_grad=True), dim=-1)
    labels = torch.tensor([0, 1, 2])
    ce_only, terms = attention_loss(logits, labels, mask, steps, LossWeights())
    assert ce_only.item() == pytest.approx(terms["ce"].item())
    full, _ = attention_loss(logits, labels, mask, steps, LossWeights(1.0, 1.0, 1.0, 1.0, 1.0))
    full.backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0
    assert set(terms) == {"ce", "tv", "contrast", "unimodality", "mask_area", "temporal_entropy"}
