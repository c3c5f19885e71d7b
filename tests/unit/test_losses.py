"""Regularizers on hand-computed cases, and their independence of batch size and clip length."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import (LossWeights, attention_loss, complement_evidence, contrast, temporal_entropy,
                             total_variation, unimodality)


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
    assert set(terms) == {"ce", "tv", "contrast", "unimodality", "mask_area", "temporal_entropy", "mask_complement",
                          "open_classification"}


def test_complement_evidence_is_minus_log_one_minus_the_true_class_probability_and_stays_finite():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [300.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, 0])
    p = torch.softmax(logits[:2], dim=-1)
    expected = [-math.log(1 - p[0, 0].item()), -math.log(1 - p[1, 2].item()), 300.0 - math.log(2)]  # last: 1 - p_y = 2e^-300 / (1 + 2e^-300)
    values = [complement_evidence(logits[i:i + 1], labels[i:i + 1]).item() for i in range(3)]
    assert values == pytest.approx(expected, rel=1e-4)
    # Flat once the removed part does not tell: a confident wrong class costs about nothing more.
    assert complement_evidence(torch.tensor([[-5.0, 5.0]]), torch.tensor([0])).item() < 1e-4
    with pytest.raises(ValueError, match="needs the model's complement_logits"):
        attention_loss(logits, labels, torch.rand(3, 2, 4, 4), torch.full((3, 2, 2), 0.5),
                       LossWeights(mask_complement=0.5))


def test_open_classification_is_the_cross_entropy_of_the_open_answer_and_needs_it():
    torch.manual_seed(0)
    logits, open_logits = torch.randn(3, 4), torch.randn(3, 4)
    mask, steps, labels = torch.rand(3, 5, 6, 6), torch.softmax(torch.randn(3, 5, 5), dim=-1), torch.tensor([0, 1, 2])
    total, terms = attention_loss(logits, labels, mask, steps, LossWeights(open_classification=0.5),
                                  open_logits=open_logits)
    expected = torch.nn.functional.cross_entropy(open_logits, labels)
    assert terms["open_classification"].item() == pytest.approx(expected.item())
    assert total.item() == pytest.approx(terms["ce"].item() + 0.5 * expected.item())
    with pytest.raises(ValueError, match="open_classification > 0 needs the model's open_logits"):
        attention_loss(logits, labels, mask, steps, LossWeights(open_classification=0.5))
