"""Run configs at test size for `diffreid run`, and file-for-file comparison of output trees."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml


def tiny_config(base: Path, **changes) -> dict:
    config = {
        "seed": 0,
        "sources": [{"name": "source", "synth": {"identities": 8, "style": "market"}}],
        "target": {"name": "target", "synth": {"identities": 8, "style": "mall", "seed": 1}},
        "backbone": "resnet18",
        "caption": {"captioner": "attributes"},
        "finetune": {"base_model": str(base), "steps": 2, "batch_size": 2, "prior_batch_size": 1,
                     "reference_size": 2, "lora_rank": 2, "identity_tokens": 2, "warmup_steps": 1,
                     "checkpoint_every": 2, "sample_steps": 2},
        "generate": {"per_identity": 4, "steps": 2, "batch_size": 2},
        "filter": {"score": "cosine", "percentile": 5},  # measured: some generations pass, some not
        "pretrain": {"preset": "cpu-tiny", "batch_p": 2},
        "downstream": {"preset": "cpu-tiny"},
        "settings": [{"name": "supervised"}, {"name": "few-shot", "fraction": 0.5}],
        "inits": ["scratch", "source-only", "diff-person"],
        "report": {"identities": 3},
    }
    config.update(changes)
    return config


def write_config(folder: Path, config: dict) -> Path:
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def tree_hashes(folder: Path) -> dict[str, str]:
    """Every file's sha256 but the manifests' provenance (creation time, command line)."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "manifest.json"}
