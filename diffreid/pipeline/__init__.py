"""`diffreid run` and `diffreid demo`: every stage of the paradigm from one config, resumable."""

from diffreid.pipeline.runner import ORDER, run

__all__ = ["ORDER", "run"]
