"""How confidently a Re-ID model says an image is the identity it claims to be.

A scorer's view of a source dataset is a `Reference`: the L2-normalised features of
its real images and each identity's centroid. Three scores (higher is more confident):

- cosine: s(x, i) = <f(x), c_i>, with c_i the normalised mean feature of identity i;
- margin: <f(x), c_i> - max_{j != i} <f(x), c_j>, which also catches a look-alike of a
  neighbouring identity;
- prob: the scorer's softmax probability of class i (models trained with a classifier
  over the source identities, i.e. diffreid training runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffreid.errors import DiffreidError
from diffreid.evaluation.distance import l2_normalize

SCORES = ("cosine", "margin", "prob")


@dataclass
class Reference:
    features: np.ndarray  # N x D, normalised: the source's real images
    image_pids: np.ndarray  # N
    camids: np.ndarray  # N
    pids: np.ndarray  # P identities, sorted
    centroids: np.ndarray  # P x D, normalised

    @classmethod
    def from_features(cls, features: np.ndarray, image_pids: np.ndarray, camids: np.ndarray) -> "Reference":
        features = l2_normalize(np.asarray(features, dtype=np.float32))
        pids, inverse = np.unique(image_pids, return_inverse=True)
        sums = np.zeros((len(pids), features.shape[1]), np.float32)
        np.add.at(sums, inverse, features)
        return cls(features, np.asarray(image_pids), np.asarray(camids), pids, l2_normalize(sums))

    def index(self, pids: np.ndarray) -> np.ndarray:
        """Row of each pid among the centroids; -1 where the source has no such identity."""
        rows = np.searchsorted(self.pids, pids).clip(0, max(0, len(self.pids) - 1))
        return np.where(self.pids[rows] == pids, rows, -1) if len(self.pids) else np.full(len(pids), -1)


def confidence(kind: str, features: np.ndarray, claimed: np.ndarray, reference: Reference,
               probabilities: np.ndarray | None = None, class_index: np.ndarray | None = None,
               own_centroids: np.ndarray | None = None) -> np.ndarray:
    """Scores of images `features` claimed to be identities `claimed` (source pids).

    `own_centroids` replaces each image's own-identity centroid (calibration uses the
    centroid of the identity's other cameras); `probabilities` and `class_index` (the
    class of each claimed pid) serve the prob score.
    """
    if kind == "prob":
        if probabilities is None or class_index is None:
            raise DiffreidError("the prob score needs a scorer with a classifier over the source identities "
                                "(a diffreid training run); use --score cosine or margin with this model")
        return probabilities[np.arange(len(claimed)), class_index].astype(np.float32)
    if kind not in SCORES:
        raise DiffreidError(f"unknown score {kind!r}; scores: {', '.join(SCORES)}")
    features = l2_normalize(np.asarray(features, dtype=np.float32))
    rows = reference.index(np.asarray(claimed))
    if (rows < 0).any():
        raise DiffreidError(f"identities {sorted(set(np.asarray(claimed)[rows < 0].tolist()))[:5]} have no real "
                            "images in their source dataset")
    similarities = features @ reference.centroids.T
    own = (np.einsum("nd,nd->n", features, own_centroids) if own_centroids is not None
           else similarities[np.arange(len(rows)), rows])
    if kind == "cosine":
        return own
    similarities[np.arange(len(rows)), rows] = -np.inf
    return own - similarities.max(axis=1) if similarities.shape[1] > 1 else own


def cross_camera_scores(kind: str, reference: Reference, probabilities: np.ndarray | None = None,
                        class_index: np.ndarray | None = None) -> np.ndarray:
    """Each real image scored against its identity's images from the other cameras.

    Generated images are new views, so the bar is how sure the model is of a real image
    of the same person seen by another camera. Images of identities seen by one camera
    only have no such reference and are left out.
    """
    features, pids, camids = reference.features, reference.image_pids, reference.camids
    own = np.zeros_like(features)
    usable = np.zeros(len(features), bool)
    for pid in reference.pids:
        members = np.flatnonzero(pids == pid)
        total = features[members].sum(axis=0)
        for cam in np.unique(camids[members]):
            same = members[camids[members] == cam]
            others = total - features[same].sum(axis=0)
            if len(same) < len(members) and np.linalg.norm(others) > 0:
                own[same] = others / np.linalg.norm(others)
                usable[same] = True
    if not usable.any():
        raise DiffreidError("no identity of the source dataset is seen by two cameras: a cross-camera threshold "
                            "cannot be calibrated; pass --threshold")
    if kind == "prob":
        return confidence(kind, features[usable], pids[usable], reference, probabilities[usable],
                          class_index[usable])
    return confidence(kind, features[usable], pids[usable], reference, own_centroids=own[usable])
