"""Stage two of Diffusion-ReID: the Re-ID confidence threshold filter (CTF) and Diff-Person."""

from diffreid.filtering.stage import run

__all__ = ["run"]
