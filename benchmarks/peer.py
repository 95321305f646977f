"""fast-reid 1.4.0's evaluators, fetched and built at run time as the benchmarks' peer.

The sdist is downloaded from PyPI into benchmarks/.peer/ (gitignored), its Cython rank
evaluator is compiled there once, and both it and the original k-reciprocal re-ranking
(fastreid/evaluation/rerank.py, numpy only) are imported from that folder. Nothing of
the peer's code is part of the project.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
from pathlib import Path

VERSION = "1.4.0"
CACHE = Path(__file__).resolve().parent / ".peer"
SOURCE = CACHE / f"fastreid-{VERSION}" / "fastreid" / "evaluation"

_BUILD = """
import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
setup(name="rank_cy", script_args=["build_ext", "--inplace"],
      ext_modules=cythonize([Extension("rank_cy", ["rank_cy.pyx"], include_dirs=[np.get_include()])],
                            compiler_directives={"language_level": 3}, quiet=True))
"""


def _unpacked() -> Path:
    if not SOURCE.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"fastreid=={VERSION}", "-d", str(CACHE)], check=True)
        with tarfile.open(CACHE / f"fastreid-{VERSION}.tar.gz") as archive:
            archive.extractall(CACHE, filter="data")
    return SOURCE


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rank_cy():
    """The compiled `rank_cy` module; `evaluate_cy(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)`."""
    folder = _unpacked() / "rank_cylib"
    built = sorted(folder.glob("rank_cy*.so"))
    if not built:
        subprocess.run([sys.executable, "-c", _BUILD], cwd=folder, check=True, stdout=subprocess.DEVNULL)
        built = sorted(folder.glob("rank_cy*.so"))
    return _load("rank_cy", built[0])


def re_ranking():
    """The original `re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)`."""
    return _load("peer_rerank", _unpacked() / "rerank.py").re_ranking
