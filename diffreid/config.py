"""Typed configs, one per stage; the CLI fills them from flags."""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from dataclasses import dataclass
from pathlib import Path

# the values some fields take, named once for the configs, their checks and the CLI's choices
PRECISIONS = ("auto", "no", "fp16", "bf16")  # accelerate's mixed precision; "auto": per device
DTYPES = ("auto", "fp32", "fp16", "bf16")  # generate's weights; "auto": fp16 / bf16 on CUDA, fp32 on CPU
FINETUNE_IIR = ("table", "encoder")  # identity learnt per identity, or read from Re-ID features
BASE_TRAIN_IIR = ("reference",)  # the UNet reads another image of the person


@dataclass
class SynthConfig:
    """`diffreid data synth`: a procedural person dataset in Market-1501 layout."""

    out: Path
    identities: int = 100
    style: str | None = None  # None: the default style
    seed: int = 0


@dataclass
class CaptionConfig:
    """`diffreid caption`: a caption per image and a description per identity (LPE part 1)."""

    data: str
    out: Path
    captioner: str = "blip2"  # "blip2", "attributes" or "fixed"
    model: str = "Salesforce/blip2-opt-2.7b"  # blip2: a local folder or a hub id
    attributes: Path | None = None  # attributes: None reads attributes.json in the dataset root
    splits: tuple[str, ...] = ("train",)
    batch_size: int = 16
    prompt: str = "a photo of a person wearing"  # blip2: the text the caption continues
    num_beams: int = 3
    max_new_tokens: int = 30
    fixed_caption: str = "a photo of a person"  # fixed: every image's caption
    device: str | None = None  # None: cuda when there is one
    shard: str | None = None  # "K/N": identities K, K+N, ... of all


@dataclass
class EvaluateConfig:
    """`diffreid evaluate`: rank a dataset's queries against its gallery with a model."""

    model: str
    data: str
    out: Path | None = None
    rerank: bool = False
    rank_lists: int = 0
    batch_size: int = 64
    input_size: tuple[int, int] | None = None  # (height, width); None: read from the model
    metric: str = "cosine"
    protocol: str = "market1501"
    max_rank: int = 50


def config_dict(config) -> dict:
    """A dataclass config as plain YAML / JSON values (tuples as lists, paths as strings)."""
    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        return str(value) if isinstance(value, Path) else value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


TRAIN_PRESETS = Path(__file__).resolve().parent / "configs" / "train"  # in the package, so wheels carry them


@dataclass
class TrainConfig:
    """`diffreid train`: a Re-ID model (BoT, AGW) trained on datasets' train splits.

    Defaults are BoT's ResNet-50 recipe (Luo et al. 2019); presets in configs/train/
    change what differs, CLI flags override both.
    """

    data: tuple[str, ...]
    out: Path
    preset: str | None = None
    merge_generated: bool = False  # a Diff-Person identity drawn from a person of an earlier --data joins its class
    backbone: str = "resnet50"
    last_stride: int | None = 1  # None: the architecture's own
    pooling: str = "avg"  # "avg" or "gem" (AGW)
    neck: bool = True  # BNNeck
    nonlocal_blocks: bool = False  # AGW's non-local blocks in layer2 / layer3 (ResNets)
    input_size: tuple[int, int] = (256, 128)  # (height, width)
    init: str = "imagenet"  # "imagenet", "imagenet:FILE_OR_HUB_ID", "scratch" or a backbone's weights file
    epochs: int = 120
    batch_p: int = 16  # identities per batch
    batch_k: int = 4  # images per identity
    optimizer: str = "adam"  # "adam", "adamw" or "sgd"
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    warmup_epochs: int = 10  # linear warm-up from lr * warmup_factor
    warmup_factor: float = 0.1
    lr_schedule: str = "step"  # "step" (x lr_gamma at lr_steps) or "cosine" (to lr * min_lr_factor at the end)
    lr_steps: tuple[int, ...] = (40, 70)  # epochs where lr is multiplied by lr_gamma
    lr_gamma: float = 0.1
    min_lr_factor: float = 0.01
    label_smoothing: float = 0.1
    triplet: str = "batch_hard"  # "batch_hard", "weighted" (AGW) or "none"
    triplet_margin: float | None = 0.3  # None: soft margin
    center_loss_weight: float = 0.0  # BoT's optional center loss: 0.0005
    center_lr: float = 0.5
    flip: float = 0.5
    pad: int = 10
    random_erasing: float = 0.5
    mixed_precision: str = "auto"  # "auto" (fp16/bf16 on CUDA, none on CPU), "no", "fp16", "bf16"
    grad_accumulation: int = 1
    max_steps_per_epoch: int | None = None  # cap on batches per epoch (small runs)
    eval_data: str | None = None  # FORMAT:ROOT with query and gallery, evaluated every eval_every epochs
    eval_every: int = 0
    keep_checkpoints: int = 2
    num_workers: int = 2
    seed: int = 0


def train_preset(preset: str | Path | None) -> dict:
    """A training preset's values (a name in configs/train/ or a YAML file; None: none)."""
    import yaml

    from diffreid.errors import DiffreidError

    if preset is None:
        return {}
    path = Path(preset) if str(preset).endswith((".yaml", ".yml")) else TRAIN_PRESETS / f"{preset}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in TRAIN_PRESETS.glob("*.yaml"))
        raise DiffreidError(f"{path}: no such training preset; presets: {', '.join(names)}")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise DiffreidError(f"{path}: a preset is a YAML mapping of TrainConfig fields")
    return {**values, "preset": str(preset)}


def load_train_config(preset: str | Path | None, overrides: dict) -> TrainConfig:
    """A TrainConfig from a preset, then `overrides` (None included: `last_stride: None` is a value)."""
    return TrainConfig(**config_values(TrainConfig, train_preset(preset) | overrides, what="training option"))


@dataclass
class BaseTrainConfig:
    """`diffreid base-train`: the miniature base model, trained from scratch on person images.

    Procedural persons are captioned from their `attributes.json`, real images without
    attributes with `real_caption`; the codec and tokenizer are the pretrained files.
    """

    data: tuple[str, ...]
    out: Path
    init: str | None = None  # "tiny" or a miniature folder to continue training from; None: from scratch
    iir: str | None = None  # "reference": the UNet also reads another image of the same person (image-level IIR)
    reference_dropout: float = 0.1  # references dropped to zeros, so guidance has a reference-free model
    reference_pairs: str = "any"  # "any" other image of the person, or "other_camera" only (a new view, not a pose to copy)
    reference_tokens: int = 0  # 0: reference latents join the UNet's input; K: K tokens its cross-attention reads
    data_weights: tuple[float, ...] | None = None  # each dataset's share of a batch; None: in proportion to its size
    exclude_judged: Path | None = None  # a PETA judge (diffreid attributes): its held-out identities are left out
    splits: tuple[str, ...] = ("train",)
    real_caption: str = "a photo of a person"
    codec: Path | None = None  # folder with the TAEF2 files; None: the package's copy
    tokenizer: Path | None = None  # folder with CLIP's vocab.json and merges.txt; None: the package's copy
    image_size: tuple[int, int] = (128, 64)  # (height, width)
    unet_channels: tuple[int, ...] = (64, 128, 192)
    layers_per_block: int = 1
    text_hidden: int = 96
    text_layers: int = 4
    steps: int = 20000
    batch_size: int = 64
    lr: float = 2e-4
    warmup_steps: int = 500
    weight_decay: float = 1e-2
    ema_decay: float = 0.999
    caption_dropout: float = 0.1  # prompts dropped to "" so classifier-free guidance has an unconditional model
    snr_gamma: float | None = 5.0  # min-SNR loss weighting; None: plain MSE
    checkpoint_every: int = 250
    sample_every: int = 1000
    sample_steps: int = 25  # DPM-Solver++ steps of the sample sheets
    log_every: int = 25
    mixed_precision: str = "auto"
    encode_batch: int = 32
    seed: int = 0


def config_values(cls, values: dict, partial: bool = False, what: str = "option") -> dict:
    """`values` checked and typed by the fields of config class `cls` (YAML lists become tuples,
    strings Paths): an unknown field, a value of the wrong type or, unless `partial` (a part of a
    config checked before the rest is known), a missing field is an error that names the field."""
    from diffreid.errors import DiffreidError

    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DiffreidError(f"unknown {what}(s) {', '.join(unknown)}; options: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    typed = {name: _typed(name, value, hints[name]) for name, value in values.items()}
    missing = [name for name, f in fields.items() if name not in typed
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing and not partial:
        raise DiffreidError(f"missing {what}(s) {', '.join(missing)}")
    return typed


def build_config(cls, values: dict):
    """A stage config from plain values (YAML, flags, `--set`), checked by `config_values`."""
    return cls(**config_values(cls, values))


def _typed(where: str, value, hint):
    from diffreid.errors import DiffreidError

    if isinstance(hint, types.UnionType):  # the configs' unions are X | None
        if value is None and type(None) in typing.get_args(hint):
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is Path and isinstance(value, (str, Path)):
        return Path(value)
    if hint in (int, float) and isinstance(value, numbers.Integral if hint is int else numbers.Real) \
            and not isinstance(value, bool):
        return value
    if hint in (str, bool, dict) and isinstance(value, hint):
        return value
    if typing.get_origin(hint) is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        kinds = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(kinds) == len(value):
            return tuple(_typed(f"{where}[{i}]", v, kind) for i, (v, kind) in enumerate(zip(value, kinds)))
    shown = str(hint).replace("pathlib.", "") if typing.get_origin(hint) else hint.__name__
    raise DiffreidError(f"{where}: expected {shown}, not {value!r}")


@dataclass
class FilterConfig:
    """`diffreid filter`: the Re-ID confidence threshold filter (CTF) and the Diff-Person writer."""

    generated: tuple[Path, ...]
    scorers: tuple[str, ...]  # "SOURCE=MODEL": SOURCE a generated folder's FORMAT:ROOT or its format
    out: Path
    score: str = "cosine"  # a score of diffreid.filtering.scores.SCORES
    threshold: float | None = None  # None: calibrated on the source's real images
    percentile: float = 5.0  # calibration: this percentile of real cross-camera scores
    near_duplicate: float | None = 0.98  # drop an image this similar to one of its source images; None: keep
    # the source splits whose identified images are the real reference (centroids) and calibrate the
    # threshold: its training identities only; add "query", "gallery" only for a source never a target
    reference_splits: tuple[str, ...] = ("train",)
    shard: str | None = None  # "K/N": identities K, K+N, ... of all
    batch_size: int = 64
    jpeg_quality: int = 95


@dataclass
class FinetuneConfig:
    """`diffreid finetune`: identities into a base model (IIR + LoRA) with Diversity Injection (FSPP)."""

    data: str
    captions: Path  # folder of `diffreid caption`: captions.jsonl and identities.jsonl
    out: Path
    base_model: str = "tiny"  # "tiny", a model folder or a hub id (CompVis/stable-diffusion-v1-4)
    image_size: tuple[int, int] | None = None  # None: the base model's
    iir: str = "table"  # "table" (learned per identity) or "encoder" (from Re-ID features)
    identity_tokens: int = 4  # K; 0: without the IIR (the identity only in its description)
    images_per_identity: int | None = None  # the input sequence's length (a seeded choice); None: all
    encoder_model: str | None = None  # iir encoder: the Re-ID model whose features it reads
    lora_rank: int = 8
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    full: bool = False  # fine-tune the whole UNet instead of LoRA adapters
    prior_weight: float = 1.0  # lambda of the FSPP loss; 0 turns Diversity Injection's loss off
    reference_set: Path | None = None  # None: built in OUT/reference_set from the frozen base model
    reference_size: int = 200
    steps: int = 2000
    batch_size: int = 16
    prior_batch_size: int = 8
    lr: float = 1e-4
    iir_lr: float = 5e-3
    warmup_steps: int = 100
    snr_gamma: float | None = 5.0
    checkpoint_every: int = 250
    log_every: int = 25
    sample_steps: int = 25
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False
    encode_batch: int = 32
    seed: int = 0


@dataclass
class GenerateConfig:
    """`diffreid generate`: new images of every identity a generator learnt."""

    generator: Path  # a folder written by `diffreid finetune`; with references: "tiny" or a base-model folder
    out: Path
    references: str | None = None  # FORMAT:ROOT: draw each identity of `split` from its own images (zero-shot)
    split: str = "query"  # the references' split whose identities are drawn
    captions: Path | None = None  # references: a `diffreid caption` folder whose descriptions join the prompts
    # references: s_r, the pull towards the reference image (1: none); the best of 1-16 on unseen CUHK01 people
    reference_guidance: float = 8.0
    strength: float = 1.0  # references: 1 draws from noise alone; below, from the reference noised to that level
    references_per_image: int = 1  # references: images of the person each image is drawn from (predictions averaged)
    identity_model: str | None = None  # references: a PyTorch Re-ID model that guides towards the person (not the judge)
    identity_guidance: float = 0.0  # references: its step size per guided step, in latent units (0: off)
    identity_until: float = 0.6  # references: the share of the sampling steps it guides, from the first
    per_identity: int = 10
    shard: str | None = None  # "K/N": identities K, K+N, ... of all
    identities: tuple[int, ...] | None = None  # only these person ids (a preview); None: all
    steps: int = 25  # DPM-Solver++ steps
    guidance: float = 5.0
    injection: bool = True  # join attribute phrases absent from the identity's captions (DI)
    batch_size: int = 8
    seed: int = 0
    compile: bool = False  # torch.compile the UNet (GPU)
    dtype: str = "auto"  # "auto" (fp16 / bf16 on CUDA, fp32 on CPU), "fp32", "fp16", "bf16"


@dataclass
class SettingConfig:
    """`diffreid setting`: one downstream run (train with an init, test, add a row to the results table)."""

    name: str  # a setting of diffreid.settings.SETTINGS
    data: tuple[str, ...]  # training datasets (dg: the sources)
    out: Path
    target: str | None = None  # test dataset; None: the (first) training dataset (dg needs one)
    init: str = "imagenet"
    label: str | None = None  # the results table's name for the initialisation (None: init); one label over seeds is one cell
    preset: str = "bot-r50"  # agw-r50 for AGW, or any training preset
    fraction: float | None = None  # small-scale: of identities (0.25); few-shot: of each identity's images (0.1)
    one_per_camera: bool = False  # few-shot: one image per camera instead of a fraction
    table: Path | None = None  # results table folder; None: OUT's parent / results
    overrides: dict | None = None  # other TrainConfig fields
    eps: float = 0.6  # usl / uda: DBSCAN radius on Jaccard distances
    min_samples: int = 4  # usl / uda: DBSCAN core size
    seed: int = 0
