"""How confidently a Re-ID model says an image is the identity it claims to be.

A scorer's view of a source dataset is a `Reference`: the L2-normalised features of
its real images and each identity's centroid. Each score (higher is more confident) is a
`Score` registered by name in `SCORES` where it is defined (cosine, margin, prob below);
`confidence` rates generated images with it, `cross_camera_scores` the real images the
threshold is calibrated on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffreid.errors import DiffreidError
from diffreid.evaluation.distance import l2_normalize
from diffreid.registry import Registry


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


@dataclass
class Claims:
    """Images a score rates, each claimed to be one source identity."""

    features: np.ndarray  # N x D, as the scorer gave them
    claimed: np.ndarray  # N source pids
    reference: Reference
    probabilities: np.ndarray | None = None  # N x classes: the scorer's softmax (classifier scores)
    class_index: np.ndarray | None = None  # N: the class of each claimed pid
    own_centroids: np.ndarray | None = None  # N x D: replaces each image's own-identity centroid

    def similarities(self) -> tuple[np.ndarray, np.ndarray]:
        """Each image's cosine similarity to its identity's centroid (or its `own_centroids` row), and
        to every centroid, its own identity's at -inf (the rivals)."""
        features = l2_normalize(np.asarray(self.features, dtype=np.float32))
        rows = self.reference.index(np.asarray(self.claimed))
        if (rows < 0).any():
            raise DiffreidError(f"identities {sorted(set(np.asarray(self.claimed)[rows < 0].tolist()))[:5]} have "
                                "no real images in their source dataset")
        similarities = features @ self.reference.centroids.T
        own = (np.einsum("nd,nd->n", features, self.own_centroids) if self.own_centroids is not None
               else similarities[np.arange(len(rows)), rows])
        similarities[np.arange(len(rows)), rows] = -np.inf
        return own, similarities


class Score:
    """One score, registered in SCORES: `of` rates `Claims`, for generated images and, with each real
    image's centroid of its identity's other cameras as `own_centroids`, for the calibration."""

    classifier = False  # read off the scorer's softmax over the source identities (`probabilities`)

    def of(self, claims: Claims) -> np.ndarray:
        raise NotImplementedError


SCORES: Registry[type[Score]] = Registry("score")


@SCORES.register("cosine")
class Cosine(Score):
    """s(x, i) = <f(x), c_i>, with c_i the normalised mean feature of identity i."""

    def of(self, claims: Claims) -> np.ndarray:
        return claims.similarities()[0]


@SCORES.register("margin")
class Margin(Score):
    """<f(x), c_i> - max_{j != i} <f(x), c_j>, which also catches a look-alike of a neighbouring identity."""

    def of(self, claims: Claims) -> np.ndarray:
        own, rivals = claims.similarities()
        return own - rivals.max(axis=1) if rivals.shape[1] > 1 else own


@SCORES.register("prob")
class Prob(Score):
    """The scorer's softmax probability of class i (models trained with a classifier over the source
    identities, i.e. diffreid training runs)."""

    classifier = True

    def of(self, claims: Claims) -> np.ndarray:
        return claims.probabilities[np.arange(len(claims.claimed)), claims.class_index].astype(np.float32)


def confidence(kind: str, features: np.ndarray, claimed: np.ndarray, reference: Reference,
               probabilities: np.ndarray | None = None, class_index: np.ndarray | None = None,
               own_centroids: np.ndarray | None = None) -> np.ndarray:
    """Scores of images `features` claimed to be identities `claimed` (source pids).

    `own_centroids` replaces each image's own-identity centroid (calibration uses the
    centroid of the identity's other cameras); `probabilities` and `class_index` (the
    class of each claimed pid) serve the classifier scores (prob).
    """
    score = SCORES[kind]
    if score.classifier and (probabilities is None or class_index is None):
        others = " or ".join(name for name in SCORES if not SCORES[name].classifier)
        raise DiffreidError(f"the {kind} score needs a scorer with a classifier over the source identities "
                            f"(a diffreid training run); use --score {others} with this model")
    return score().of(Claims(features, claimed, reference, probabilities, class_index, own_centroids))


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
    return confidence(kind, features[usable], pids[usable], reference, _rows(probabilities, usable),
                      _rows(class_index, usable), own[usable])


def _rows(values: np.ndarray | None, usable: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[usable]
