"""Re-ID evaluation: rank metrics (CMC, mAP, mINP), k-reciprocal re-ranking, distances."""

from diffreid.evaluation.feature_metrics import evaluate_features
from diffreid.evaluation.rank import EvaluationError, evaluate_rank
from diffreid.evaluation.rerank import re_rank
from diffreid.evaluation.rerank_features import jaccard_distances, re_rank_features

__all__ = ["EvaluationError", "evaluate_features", "evaluate_rank", "jaccard_distances", "re_rank", "re_rank_features"]
