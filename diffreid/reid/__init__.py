"""Re-ID models: loading, feature extraction."""

from diffreid.reid.features import extract_features
from diffreid.reid.loading import load_reid_model

__all__ = ["extract_features", "load_reid_model"]
