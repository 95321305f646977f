"""Re-ID evaluation: rank metrics (CMC, mAP, mINP), k-reciprocal re-ranking, distances."""

from diffreid.evaluation.rank import EvaluationError, evaluate_rank
from diffreid.evaluation.rerank import re_rank

__all__ = ["EvaluationError", "evaluate_rank", "re_rank"]
