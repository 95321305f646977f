"""Colour-histogram features: the shape, normalisation and invariances the baseline relies on."""

from __future__ import annotations

import numpy as np

from diffreid.baselines import color_histogram_features
from diffreid.evaluation.distance import pairwise_distance


def _person(top, bottom, background=(128, 128, 128)) -> np.ndarray:
    """A 128x64 image: a shirt over trousers in the middle columns."""
    image = np.full((128, 64, 3), background, np.uint8)
    image[10:64, 16:48] = top
    image[64:120, 20:44] = bottom
    return image


def test_features_are_unit_length_stripe_histograms():
    features = color_histogram_features([_person((200, 30, 30), (20, 20, 80))] * 2, bins=(8, 4, 4), stripes=6)
    assert features.shape == (2, 6 * 8 * 4 * 4) and features.dtype == np.float32
    assert np.allclose(np.linalg.norm(features, axis=1), 1)


def test_same_clothes_are_closer_than_swapped_or_other_clothes():
    red_blue = _person((200, 30, 30), (20, 20, 80))
    shifted = np.roll(_person((200, 30, 30), (20, 20, 80), background=(100, 120, 100)), 3, axis=1)
    blue_red = _person((20, 20, 80), (200, 30, 30))
    green = _person((30, 160, 40), (220, 220, 210))
    features = color_histogram_features([red_blue, shifted, blue_red, green])
    distances = pairwise_distance(features[:1], features[1:], "cosine")[0]
    assert distances[0] < distances[1] and distances[0] < distances[2]


def test_the_background_weighs_less_than_the_person():
    person = _person((200, 30, 30), (20, 20, 80))
    other_background = _person((200, 30, 30), (20, 20, 80), background=(40, 140, 200))
    other_person = _person((30, 160, 40), (220, 220, 210))
    features = color_histogram_features([person, other_background, other_person])
    distances = pairwise_distance(features[:1], features[1:], "cosine")[0]
    assert distances[0] < distances[1]
