"""`diffreid evaluate`: extract features with a Re-ID model, rank query against gallery."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from diffreid.artifacts import write_json_atomic
from diffreid.config import EvaluateConfig
from diffreid.data import load_dataset
from diffreid.evaluation.feature_metrics import evaluate_distances, feature_distances
from diffreid.reid import extract_features, load_reid_model
from diffreid.reid.features import extract_features_to_disk
from diffreid.reid.rank_lists import save_rank_lists

log = logging.getLogger(__name__)

STREAM_ABOVE = 20_000  # images; a larger split's features go to a file on disk, not a list in memory


def _extract(model, records, config: EvaluateConfig, desc: str, scratch: Path):
    if len(records) <= STREAM_ABOVE:
        return extract_features(model, records, model.input_size, config.batch_size, desc=desc)
    return extract_features_to_disk(model, records, model.input_size, scratch / f"{desc}.npy", config.batch_size,
                                    desc=desc)


def format_results(results: dict) -> str:
    cmc = results["cmc"]
    ranks = "  ".join(f"Rank-{k}: {100 * cmc[k - 1]:.1f}%" for k in (1, 5, 10) if k <= len(cmc))
    return f"mAP: {100 * results['mAP']:.1f}%  mINP: {100 * results['mINP']:.1f}%  {ranks}"


def run(config: EvaluateConfig) -> dict:
    """Evaluate `config.model` on `config.data`; write `results.json` when `config.out` is set."""
    dataset = load_dataset(config.data).require("query", "gallery")
    for problem in dataset.problems:
        log.warning("%s", problem)
    model = load_reid_model(config.model, input_size=config.input_size)
    log.info("model %s, input %dx%d; %d query and %d gallery images", config.model, *model.input_size,
             len(dataset.query), len(dataset.gallery))
    with tempfile.TemporaryDirectory(prefix="diffreid-features-") as scratch:
        q_feats, query = _extract(model, dataset.query, config, "query", Path(scratch))
        g_feats, gallery = _extract(model, dataset.gallery, config, "gallery", Path(scratch))
        return _rank(config, q_feats, g_feats, query, gallery)


def _rank(config: EvaluateConfig, q_feats, g_feats, query, gallery) -> dict:
    # query x gallery distances (re-ranked if asked) computed a block of queries at a time, never all at once
    distances = feature_distances(q_feats, g_feats, config.metric, rerank=config.rerank)
    results = evaluate_distances(distances, np.array([r.pid for r in query]), np.array([r.pid for r in gallery]),
                                 np.array([r.camid for r in query]), np.array([r.camid for r in gallery]),
                                 max_rank=config.max_rank, protocol=config.protocol)
    print(format_results(results))
    summary = {
        "mAP": float(results["mAP"]),
        "mINP": float(results["mINP"]),
        "cmc": [float(v) for v in results["cmc"]],
        "model": str(config.model),
        "dataset": config.data,
        "setting": "evaluate",
        "num_query": len(query),
        "num_gallery": len(gallery),
        "config": asdict(config),
    }
    if config.out is not None:
        write_json_atomic(config.out / "results.json", summary)
        log.info("wrote %s", config.out / "results.json")
        if config.rank_lists:
            saved = save_rank_lists(distances, query, gallery, config.out / "rank_lists", config.rank_lists)
            log.info("wrote %d rank lists to %s", len(saved), config.out / "rank_lists")
    elif config.rank_lists:
        log.warning("--rank-lists needs --out DIR; no rank lists saved")
    return summary
