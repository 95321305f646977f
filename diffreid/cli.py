"""`diffreid <command>`: argument parsing only; the work lives in library functions."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from diffreid import __version__
from diffreid.config import (BASE_TRAIN_IIR, DTYPES, FINETUNE_IIR, PRECISIONS, CaptionConfig, EvaluateConfig,
                             FilterConfig, FinetuneConfig, GenerateConfig, SettingConfig, SynthConfig)
from diffreid.data.records import SPLITS
from diffreid.data.small_protocols import SMALL_BENCHMARKS
from diffreid.errors import DiffreidError
from diffreid.evaluation.distance import METRICS
from diffreid.evaluation.rank import PROTOCOLS
from diffreid.filtering.scores import SCORES
from diffreid.judges.attribute_classifier import judge_backbones
from diffreid.judges.peta_judge import train_judge
from diffreid.pipeline.study import QUESTIONS, STUDY_INITS, study
from diffreid.run_spec import DEMO_PRESETS
from diffreid.settings import SETTINGS
from diffreid.settings.table import TABLE_METRICS, append_row, compare as compare_table
from diffreid.small_benchmark import run as small_benchmark
from diffreid.synthesis.captioners import CAPTIONERS


def _input_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input size {text!r} is not HEIGHTxWIDTH, e.g. 256x128") from None
    return height, width


def _generated_argument(parser: argparse.ArgumentParser, more: str = "") -> None:
    """`--generated`: the folders a command reads generate's images from."""
    parser.add_argument("--generated", nargs="+", type=Path, required=True,
                        help=f"folders written by diffreid generate{more}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffreid",
        description="Diffusion-ReID: synthetic person Re-ID data from diffusion models, and Re-ID pre-training on it.",
    )
    parser.add_argument("--version", action="version", version=f"diffreid {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_data, _add_caption, _add_finetune, _add_generate, _add_filter, _add_evaluate, _add_training,
                _add_setting, _add_base_train, _add_run, _add_study, _add_judges, _add_export, _add_benchmark):
        add(commands)
    return parser


def _add_data(commands) -> None:
    data = commands.add_parser("data", help="inspect Re-ID datasets and render procedural persons")
    data_commands = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    check = data_commands.add_parser("check", help="count identities, images and cameras per split and list problems")
    check.add_argument("dataset", metavar="FORMAT:ROOT", help="e.g. market1501:/data/Market-1501-v15.09.15")
    check.add_argument("--no-images", action="store_true", help="skip opening every image (faster)")
    check.set_defaults(handler=_data_check)

    synth = data_commands.add_parser("synth", help="render a procedural person dataset in Market-1501 layout")
    synth.add_argument("--out", type=Path, required=True, help="output dataset directory")
    synth.add_argument("--identities", type=int, default=SynthConfig.identities,
                       help=f"number of identities (default {SynthConfig.identities})")
    synth.add_argument("--style", default=SynthConfig.style, help="visual style (default: the default style)")
    synth.add_argument("--seed", type=int, default=SynthConfig.seed, help=f"random seed (default {SynthConfig.seed})")
    synth.set_defaults(handler=_data_synth)


def _add_caption(commands) -> None:
    caption = commands.add_parser("caption", help="caption a dataset's images, one description per identity (LPE)")
    caption.add_argument("--data", required=True, metavar="FORMAT:ROOT", help="dataset to caption")
    caption.add_argument("--out", type=Path, required=True, help="folder for captions.jsonl and identities.jsonl")
    caption.add_argument("--captioner", choices=CAPTIONERS.names(), default=CaptionConfig.captioner)
    caption.add_argument("--model", default=CaptionConfig.model,
                         help=f"blip2: a local BLIP-2 folder or a hub id (default {CaptionConfig.model})")
    caption.add_argument("--attributes", type=Path, default=CaptionConfig.attributes,
                         help="attributes: attributes.json, market_attribute.mat, duke_attribute.mat or a PETA "
                              "Label.txt (default: attributes.json in the dataset root; for a PETA set, the "
                              "Label.txt beside its images)")
    caption.add_argument("--splits", nargs="+", choices=SPLITS, default=list(CaptionConfig.splits))
    caption.add_argument("--batch-size", type=int, default=CaptionConfig.batch_size)
    caption.add_argument("--prompt", default=CaptionConfig.prompt, help="blip2: the text each caption continues")
    caption.add_argument("--num-beams", type=int, default=CaptionConfig.num_beams, help="blip2: beam width (1: greedy)")
    caption.add_argument("--max-new-tokens", type=int, default=CaptionConfig.max_new_tokens)
    caption.add_argument("--device", default=CaptionConfig.device,
                         help="blip2: torch device (default: cuda when there is one)")
    caption.add_argument("--fixed-caption", default=CaptionConfig.fixed_caption, help="fixed: every image's caption")
    caption.add_argument("--shard", default=None, metavar="K/N", help="caption identities K, K+N, ... only")
    caption.set_defaults(handler=_caption)


def _add_finetune(commands) -> None:
    """Flags left at None keep FinetuneConfig's default (the config is built from those given)."""
    tune = commands.add_parser("finetune", help="fine-tune a base model on identities: IIR tokens, LoRA, "
                                                 "Diversity Injection (FSPP); resumes a killed run")
    tune.add_argument("--data", required=True, metavar="FORMAT:ROOT", help="dataset whose train identities to learn")
    tune.add_argument("--captions", type=Path, required=True, help="folder written by diffreid caption")
    tune.add_argument("--base-model", default=FinetuneConfig.base_model,
                      help="tiny, a model folder or a hub id of SD v1.x")
    tune.add_argument("--out", type=Path, required=True, help="the generator folder")
    tune.add_argument("--iir", choices=FINETUNE_IIR, default=None)
    tune.add_argument("--encoder-model", default=None, help="--iir encoder: the Re-ID model whose features it reads")
    tune.add_argument("--identity-tokens", type=int, default=None, metavar="K",
                      help="identity tokens per identity (IIR); 0: without the IIR")
    tune.add_argument("--images-per-identity", type=int, default=None, metavar="N",
                      help="input sequence length: N images of each identity (seeded); default all")
    tune.add_argument("--lora-rank", type=int, default=None)
    tune.add_argument("--full", action="store_true", help="fine-tune the whole UNet instead of LoRA adapters")
    tune.add_argument("--prior-weight", type=float, default=None, metavar="LAMBDA", help="FSPP weight (0: off)")
    tune.add_argument("--reference-set", type=Path, default=None, help="an attribute reference set to reuse")
    tune.add_argument("--gradient-checkpointing", action="store_true")
    _step_training_arguments(tune, "FinetuneConfig", "lora_targets=[to_q,to_v]")
    tune.set_defaults(handler=_finetune)


def _add_generate(commands) -> None:
    gen = commands.add_parser("generate", help="sample new images of every identity of a generator, or of every "
                                               "person of a dataset split from their own images (--references)")
    gen.add_argument("--generator", type=Path, required=True,
                     help="folder written by diffreid finetune; with --references, a base model that reads "
                          "reference images (tiny, or a `base-train --iir reference` run's model/)")
    gen.add_argument("--references", default=GenerateConfig.references, metavar="FORMAT:ROOT",
                     help="draw every identity of --split from its own images, no fine-tuning (zero-shot)")
    gen.add_argument("--split", default=GenerateConfig.split, choices=SPLITS,
                     help=f"the references' split (default {GenerateConfig.split}: e.g. cuhk01-485's test people, "
                          "camera A)")
    gen.add_argument("--captions", type=Path, default=GenerateConfig.captions,
                     help="with --references: a diffreid caption folder of that dataset (descriptions in prompts)")
    gen.add_argument("--reference-guidance", type=float, default=GenerateConfig.reference_guidance,
                     help=f"with --references: guidance towards the reference image "
                          f"(default {GenerateConfig.reference_guidance:g}; 1: none)")
    gen.add_argument("--strength", type=float, default=GenerateConfig.strength,
                     help=f"with --references: 1 draws from noise (default {GenerateConfig.strength:g}); below 1, from "
                          "the reference noised to that level (img2img variations: nearer the person and nearer "
                          "the reference image)")
    gen.add_argument("--references-per-image", type=int, default=GenerateConfig.references_per_image, metavar="K",
                     help="with --references: draw each image from K of the person's images at once (the model's "
                          "predictions for each averaged; e.g. 2: both of a CUHK01 person's camera-A images)")
    gen.add_argument("--identity-model", default=GenerateConfig.identity_model, metavar="REID",
                     help="with --references: a PyTorch Re-ID model (torchreid .pth weights or a diffreid run) whose "
                          "features steer the first sampling steps towards the references' person; use one that is "
                          "not the model judging the result")
    gen.add_argument("--identity-guidance", type=float, default=GenerateConfig.identity_guidance, metavar="W",
                     help="with --identity-model: the step each guided sampling step takes towards the person, in "
                          f"latent units (default {GenerateConfig.identity_guidance:g}: off)")
    gen.add_argument("--identity-until", type=float, default=GenerateConfig.identity_until, metavar="SHARE",
                     help=f"with --identity-model: the share of the sampling steps guided, from the first "
                          f"(default {GenerateConfig.identity_until:g}; the rest let the UNet settle the picture)")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--per-identity", type=int, default=GenerateConfig.per_identity)
    gen.add_argument("--shard", default=GenerateConfig.shard, metavar="K/N",
                     help="generate identities K, K+N, ... only")
    gen.add_argument("--identities", type=int, nargs="+", default=None, metavar="PID",
                     help="only these person ids (a preview; their images are those a full run makes)")
    gen.add_argument("--steps", type=int, default=GenerateConfig.steps, help="DPM-Solver++ steps")
    gen.add_argument("--guidance", type=float, default=GenerateConfig.guidance,
                     help="classifier-free guidance scale")
    gen.add_argument("--no-injection", action="store_true", help="no Diversity Injection attributes in the prompts")
    gen.add_argument("--batch-size", type=int, default=GenerateConfig.batch_size)
    gen.add_argument("--seed", type=int, default=GenerateConfig.seed)
    gen.add_argument("--dtype", choices=DTYPES, default=GenerateConfig.dtype)
    gen.add_argument("--compile", action="store_true", help="torch.compile the UNet (GPU)")
    gen.set_defaults(handler=_generate)


def _add_filter(commands) -> None:
    filt = commands.add_parser("filter", help="keep generated images a Re-ID model is confident about (CTF); "
                                              "write Diff-Person in Market-1501 layout")
    _generated_argument(filt)
    filt.add_argument("--scorer", action="append", required=True, metavar="SOURCE=MODEL",
                      help="a Re-ID model (ONNX, OSNet .pth, training run) for the images generated from SOURCE "
                           "(its FORMAT:ROOT or format); repeat to average several")
    filt.add_argument("--out", type=Path, required=True, help="the Diff-Person folder")
    filt.add_argument("--score", choices=SCORES.names(), default=FilterConfig.score)
    filt.add_argument("--threshold", type=float, default=FilterConfig.threshold,
                      help="a fixed bar (default: calibrated)")
    filt.add_argument("--percentile", type=float, default=FilterConfig.percentile,
                      help=f"calibration: this percentile of real images' cross-camera scores "
                           f"(default {FilterConfig.percentile:g})")
    filt.add_argument("--near-duplicate", type=float, default=FilterConfig.near_duplicate, metavar="COSINE",
                      help=f"drop images at least this similar to one of their source images "
                           f"(default {FilterConfig.near_duplicate:g})")
    filt.add_argument("--no-near-duplicate", action="store_true", help="keep near-copies of source images")
    filt.add_argument("--reference-splits", nargs="+", choices=SPLITS, default=list(FilterConfig.reference_splits),
                      metavar="SPLIT", help="the source splits whose real images are the reference and set the "
                                            "threshold (default: train, the training identities only; add query "
                                            "gallery only for a source that is never a target)")
    filt.add_argument("--shard", default=FilterConfig.shard, metavar="K/N", help="filter identities K, K+N, ... only")
    filt.add_argument("--batch-size", type=int, default=FilterConfig.batch_size)
    filt.set_defaults(handler=_filter)


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser("evaluate", help="rank query against gallery with a Re-ID model; mAP, CMC, mINP")
    evaluate.add_argument("--model", required=True,
                          help="a Re-ID model: an ONNX file, torchreid OSNet weights (.pth), a backbone (.safetensors) "
                               "or a training run's directory")
    evaluate.add_argument("--data", required=True, metavar="FORMAT:ROOT", help="dataset with query and gallery splits")
    evaluate.add_argument("--out", type=Path, default=EvaluateConfig.out,
                          help="directory for results.json and rank lists")
    evaluate.add_argument("--rerank", action="store_true", help="apply k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)")
    evaluate.add_argument("--rank-lists", type=int, default=EvaluateConfig.rank_lists, metavar="K",
                          help="save the top-10 rank list of K queries")
    evaluate.add_argument("--batch-size", type=int, default=EvaluateConfig.batch_size)
    evaluate.add_argument("--input-size", type=_input_size, default=EvaluateConfig.input_size, metavar="HxW",
                          help="model input size when the model does not fix it, e.g. 256x128")
    evaluate.add_argument("--metric", choices=METRICS, default=EvaluateConfig.metric)
    evaluate.add_argument("--protocol", choices=PROTOCOLS, default=EvaluateConfig.protocol)
    evaluate.set_defaults(handler=_evaluate)


def _add_training(commands) -> None:
    train = commands.add_parser("train", help="train a Re-ID model (BoT, AGW presets); resumes a killed run")
    _training_arguments(train)
    train.set_defaults(handler=_train)

    pretrain = commands.add_parser("pretrain", help="pre-train a backbone on Diff-Person (or any datasets) and "
                                                      "export it as RUN/backbone.safetensors")
    _training_arguments(pretrain)
    pretrain.set_defaults(handler=_pretrain, preset="pretrain-paper")


def _add_setting(commands) -> None:
    setting = commands.add_parser("setting", help="a downstream setting: train with an init, test, add a row to "
                                                  "the results table")
    setting.add_argument("name", choices=SETTINGS.names())
    setting.add_argument("--data", action="append", required=True, metavar="FORMAT:ROOT",
                         help="training dataset (dg: a source; repeat for several)")
    setting.add_argument("--target", default=SettingConfig.target, metavar="FORMAT:ROOT",
                         help="test dataset (default: --data)")
    setting.add_argument("--init", default=SettingConfig.init, help="imagenet, imagenet:FILE_OR_HUB_ID, scratch, or a "
                                                                    "pre-trained backbone.safetensors")
    setting.add_argument("--label", default=SettingConfig.label,
                         help="the results table's name for this initialisation (default: --init); runs of one label "
                              "over seeds are one cell of `diffreid compare`")
    setting.add_argument("--preset", default=SettingConfig.preset,
                         help="training preset (bot-r50, agw-r50, bot-r18-cpu, ...)")
    setting.add_argument("--fraction", type=float, default=SettingConfig.fraction,
                         help="small-scale: of the identities (0.25); few-shot: of each identity's images (0.1)")
    setting.add_argument("--one-per-camera", action="store_true", help="few-shot: one image per camera")
    setting.add_argument("--out", type=Path, required=True, help="the run's folder")
    setting.add_argument("--table", type=Path, default=SettingConfig.table,
                         help="results table folder (default: OUT/../results)")
    setting.add_argument("--eps", type=float, default=SettingConfig.eps,
                         help="usl / uda: DBSCAN radius on Jaccard distances")
    setting.add_argument("--min-samples", type=int, default=SettingConfig.min_samples,
                         help="usl / uda: DBSCAN core size")
    setting.add_argument("--seed", type=int, default=SettingConfig.seed)
    setting.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="any TrainConfig field")
    setting.set_defaults(handler=_setting)

    compare = commands.add_parser("compare", help="the results table with initialisations side by side, over seeds")
    compare.add_argument("table", type=Path, nargs="+",
                         help="results table folder (holds results.csv); several are read as one, an init name a "
                              "later one repeats becoming NAME@FOLDER")
    defaults = _defaults(compare_table)
    compare.add_argument("--baseline", metavar="INIT", default=defaults["baseline"],
                         help="also each initialisation against this one (its --label or --init): the paired mAP "
                              "difference over seeds, its 95%% interval and the verdict")
    compare.add_argument("--min-seeds", type=int, default=defaults["min_seeds"], metavar="N",
                         help=f"paired seeds a verdict needs (default {defaults['min_seeds']})")
    compare.add_argument("--metric", choices=TABLE_METRICS, default=defaults["metric"],
                         help=f"what the paired differences compare (default {defaults['metric']})")
    compare.set_defaults(handler=_compare)


def _add_base_train(commands) -> None:
    """Flags left at None keep BaseTrainConfig's default (the config is built from those given)."""
    base = commands.add_parser("base-train", help="train the miniature base model on captioned person images; "
                                                  "resumes a killed run")
    base.add_argument("--data", action="append", required=True, metavar="FORMAT:ROOT",
                      help="person images (procedural persons are captioned from attributes.json); repeat to mix")
    base.add_argument("--out", type=Path, required=True, help="run directory (cache, checkpoints, model/)")
    base.add_argument("--init", default=None, metavar="tiny|FOLDER",
                      help="go on training this miniature (the packaged one, or a base-train run's model/); "
                           "default: a new one from scratch")
    base.add_argument("--iir", choices=BASE_TRAIN_IIR, default=None,
                      help="reference: the UNet also reads another image of the same person (the image-level IIR), "
                           "so `generate --references` draws people it never saw from their images")
    base.add_argument("--image-size", type=_input_size, default=None, metavar="HxW")
    base.add_argument("--codec", type=Path, default=None, help="folder with taef2_encoder.pth / taef2_decoder.pth")
    base.add_argument("--tokenizer", type=Path, default=None, help="folder with CLIP's vocab.json and merges.txt")
    base.add_argument("--real-caption", default=None, help="caption of images without attributes")
    _step_training_arguments(base, "BaseTrainConfig", "unet_channels=[64,128]")
    base.set_defaults(handler=_base_train)


def _step_training_arguments(parser: argparse.ArgumentParser, config: str, example: str) -> None:
    """The options the generator's step-counted trainers share; left out, the config's default holds."""
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--mixed-precision", choices=PRECISIONS, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help=f"any other {config} field, value in YAML (e.g. --set {example})")


def _add_run(commands) -> None:
    pipeline = commands.add_parser("run", help="every stage from one YAML config (caption, finetune, generate, "
                                               "filter, pretrain, settings, report); the same command resumes")
    pipeline.add_argument("config", type=Path, help="a run config, e.g. configs/demo-quick.yaml")
    pipeline.add_argument("--out", type=Path, required=True, help="the run's folder")
    pipeline.add_argument("--until", default=None, metavar="STAGE", help="stop after this stage")
    pipeline.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="the whole paradigm in miniature on procedural persons, nothing "
                                            "downloaded (diffreid run on a demo preset)")
    demo.add_argument("--preset", choices=DEMO_PRESETS, default=DEMO_PRESETS[0],
                      help="quick: about 5 minutes on 2 CPU cores (measured 4 min 53 s); full: about 35 minutes (measured 33 min 44 s)")
    demo.add_argument("--out", type=Path, required=True, help="the run's folder")
    demo.add_argument("--target", default=None, metavar="FORMAT:ROOT",
                      help="a real target (e.g. cuhk01-485:PATH): its training identities become the source too, "
                           "as the paper generates from the benchmark it tests on")
    demo.add_argument("--imagenet", default=None, metavar="FILE",
                      help="ImageNet weights of the backbone: adds the imagenet and imagenet+diff-person rows")
    demo.add_argument("--backbone", default=None, help="the backbone of every Re-ID run (default: the preset's; "
                                                        "mobilenet_v2 with --imagenet)")
    demo.add_argument("--scorer", default=None, metavar="MODEL",
                      help="the CTF's Re-ID model (e.g. an OSNet .onnx) instead of the run's source-only model")
    demo.set_defaults(handler=_demo)


def _add_study(commands) -> None:
    defaults = _defaults(study)
    questions = commands.add_parser("study", help="the questions the paper leaves open, on a finished run: CTF "
                                               "kept fraction, synthetic/real/both, sequence length, without "
                                               "IIR, without DI")
    questions.add_argument("run", type=Path, help="a finished `diffreid run` / `diffreid demo` folder")
    questions.add_argument("--out", type=Path, required=True, help="the study's folder (resumable)")
    questions.add_argument("--questions", nargs="+", default=list(defaults["questions"]), choices=QUESTIONS,
                           metavar="Q", help=f"which to measure (default: all of {', '.join(QUESTIONS)})")
    questions.add_argument("--keep", nargs="+", type=float, default=list(defaults["keep"]),
                           help="ctf: kept fractions of the generated images (1.0: without the CTF)")
    questions.add_argument("--lengths", nargs="+", type=int, default=list(defaults["lengths"]),
                           help="sequence: images per identity given to fine-tuning")
    questions.add_argument("--consistency-model", default=defaults["consistency_model"], metavar="MODEL",
                           help="the Re-ID model judging identity consistency (default: the run's source-only model)")
    questions.add_argument("--init", default=defaults["init"], choices=STUDY_INITS,
                           help="which Diff-Person initialisation the variants pre-train")
    questions.set_defaults(handler=_study)


def _add_judges(commands) -> None:
    judge = commands.add_parser("consistency", help="are generated images their person? A Re-ID model nobody "
                                                    "trained on them scores each generated folder against the real "
                                                    "images of its identities")
    _generated_argument(judge)
    judge.add_argument("--model", required=True, help="the judging Re-ID model (e.g. an OSNet .onnx)")
    judge.add_argument("--reference-camera", type=int, default=None, metavar="C",
                       help="the real gallery and centroids hold this camera's images only (CUHK01: 1)")
    judge.add_argument("--real-camera", type=int, default=None, metavar="C",
                       help="also score this camera's real images the same way, the reference (CUHK01: 2)")
    judge.add_argument("--out", type=Path, default=None, help="write the scores here as JSON")
    judge.set_defaults(handler=_consistency)

    defaults = _defaults(train_judge)
    attrs = commands.add_parser("attributes", help="train the attribute classifier that judges generators "
                                                   "(prompt fidelity, attribute diversity) on procedural persons "
                                                   "or on real people's PETA labels, or the view judge")
    attrs.add_argument("--data", action="append", required=True, metavar="FORMAT:ROOT",
                       help="a procedural dataset with attributes.json (diffreid synth), or a PETA set with its "
                            "Label.txt (peta-all:ROOT for all of them); with --judge views, sets whose file names "
                            "give the view (sarc3d:, mit:); repeat for several")
    attrs.add_argument("--judge", default="attributes", choices=("attributes", "views"),
                       help="attributes (default), or views: one head over front / back / left / right, each "
                            "image's view read from its file name (SARC3D, MIT)")
    attrs.add_argument("--held-out-fraction", type=float, default=None, metavar="F",
                       help="PETA and views: share of each set's identities held out of training and scored "
                            f"(default {defaults['held_out_fraction']:g})")
    attrs.add_argument("--out", type=Path, required=True)
    attrs.add_argument("--epochs", type=int, default=defaults["epochs"])
    attrs.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    attrs.add_argument("--backbone", default=defaults["backbone"], choices=judge_backbones())
    attrs.add_argument("--init", default=defaults["init"], help="scratch, imagenet:FILE or a weights file")
    attrs.add_argument("--seed", type=int, default=defaults["seed"])
    attrs.set_defaults(handler=_attributes)

    spread = commands.add_parser("diversity", help="attribute values generated images show that their identity's "
                                                   "input images lack, read by the attribute classifier (DI)")
    _generated_argument(spread)
    spread.add_argument("--classifier", type=Path, required=True, help="a folder written by diffreid attributes")
    spread.add_argument("--per-identity", type=int, default=None, metavar="N",
                        help="compare at N generated images per identity (default: all of them)")
    spread.add_argument("--out", type=Path, default=None, help="write the counts here as JSON")
    spread.set_defaults(handler=_diversity)

    faithful = commands.add_parser("fidelity", help="do images generated of PETA people show their labelled "
                                                    "attributes? the real PETA judge on them and on their real "
                                                    "images; a view judge reads the views of injected viewpoints")
    _generated_argument(faithful, ": from a PETA set (--references) for an attribute judge, from any source for a "
                                  "view judge")
    faithful.add_argument("--judge", type=Path, required=True,
                          help="a folder written by diffreid attributes on PETA (its held-out people are the fair "
                               "test) or by diffreid attributes --judge views")
    faithful.add_argument("--out", type=Path, default=None, help="write the accuracies here as JSON")
    faithful.set_defaults(handler=_fidelity)


def _add_export(commands) -> None:
    export = commands.add_parser("export", help="write a trained run's backbone with torchvision / timm key names")
    export.add_argument("run", type=Path, help="training run directory")
    export.add_argument("--out", type=Path, required=True, help="output .safetensors file")
    export.set_defaults(handler=_export)


def _add_benchmark(commands) -> None:
    defaults = _defaults(small_benchmark)
    bench = commands.add_parser("benchmark", help="benchmark Re-ID models on standard test protocols")
    bench_commands = bench.add_subparsers(dest="benchmark_command", metavar="SUBCOMMAND", required=True)
    small = bench_commands.add_parser("small", help="PRID, GRID, i-LIDS with their classic protocols over seeded "
                                                    "trials (zero-shot: the models are not trained on them)")
    small.add_argument("--model", action="append", required=True, metavar="MODEL",
                       help="a Re-ID model (as evaluate --model takes) or color-histogram; repeat for several")
    small.add_argument("--out", type=Path, required=True,
                       help="folder for results.json, results.md, splits/ (a rerun keeps unchanged models' numbers)")
    small.add_argument("--trials", type=int, default=defaults["trials"],
                       help=f"random trials per set (default {defaults['trials']})")
    small.add_argument("--seed", type=int, default=defaults["seed"],
                       help=f"seed of the trials' draws (default {defaults['seed']})")
    small.add_argument("--list", action="store_true", help="write each trial as a list dataset under OUT/splits/")
    small.add_argument("--peta", type=Path, default=None, metavar="ROOT",
                       help="the folder holding PETA's PRID/, GRID/, i-LID/ (default: ../shared/data/peta)")
    small.add_argument("--datasets", nargs="+", default=list(defaults["datasets"]), metavar="SET",
                       help=f"which sets: {' '.join(SMALL_BENCHMARKS)} (default: all three)")
    small.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    small.add_argument("--input-size", type=_input_size, default=None, metavar="HxW",
                       help="every model's input size, e.g. 64x32 for models trained at it (default: a run's own; "
                            "a backbone's weights: 256x128)")
    small.add_argument("--table", type=Path, default=None, metavar="DIR",
                       help="also add a row per model and set to the results table in DIR (as `setting --table`), "
                            "so `diffreid compare DIR` shows them beside fine-tuned runs, over the runs' seeds")
    small.add_argument("--label", action="append", default=None, metavar="NAME",
                       help="the table's name for each --model, in order (default: its file or folder name); runs "
                            "of one label over seeds are one cell of `diffreid compare`")
    small.set_defaults(handler=_benchmark_small)


def _defaults(function) -> dict:
    """A library function's keyword defaults, so that a command's defaults are the function's own."""
    import inspect

    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `train` and `pretrain` share."""
    parser.add_argument("--data", action="append", required=True, metavar="FORMAT:ROOT",
                        help="training dataset (its train split); repeat to merge several")
    parser.add_argument("--merge-generated", action="store_true", default=None,
                        help="a Diff-Person identity drawn from a person of an earlier --data is that person's class "
                             "(default: each dataset's identities are classes apart)")
    parser.add_argument("--out", type=Path, required=True, help="run directory (config, checkpoints, model)")
    parser.add_argument("--preset", default=None, help="a preset in configs/train/ (bot-r50, agw-r50, bot-swin-tiny, "
                                                       "bot-r18-cpu, cpu-tiny) or a YAML file")
    parser.add_argument("--init", default=None, help="imagenet, imagenet:FILE_OR_HUB_ID, scratch or a backbone's "
                                                     "weights file (default: the preset's)")
    parser.add_argument("--backbone", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-p", type=int, default=None, help="identities per batch")
    parser.add_argument("--batch-k", type=int, default=None, help="images per identity")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--input-size", type=_input_size, default=None, metavar="HxW")
    parser.add_argument("--mixed-precision", choices=PRECISIONS, default=None)
    parser.add_argument("--grad-accumulation", type=int, default=None)
    parser.add_argument("--eval-data", default=None, metavar="FORMAT:ROOT", help="evaluate on its query / gallery")
    parser.add_argument("--eval-every", type=int, default=None, metavar="EPOCHS")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="any other TrainConfig field, value in YAML (e.g. --set triplet=weighted)")


def _data_check(args: argparse.Namespace) -> int:
    from diffreid.data.check import check_dataset

    report = check_dataset(args.dataset, open_images=not args.no_images)
    print(report.render())
    return 0 if report.usable else 1


def _data_synth(args: argparse.Namespace) -> int:
    from diffreid.config import SynthConfig
    from diffreid.data.synth import synthesize

    out = synthesize(SynthConfig(out=args.out, identities=args.identities, style=args.style, seed=args.seed))
    print(f"wrote {out}")
    return 0


def _caption(args: argparse.Namespace) -> int:
    from diffreid.synthesis.captioning import run

    out = run(CaptionConfig(data=args.data, out=args.out, captioner=args.captioner, model=args.model,
                            attributes=args.attributes, splits=tuple(args.splits), batch_size=args.batch_size,
                            prompt=args.prompt, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens,
                            device=args.device, shard=args.shard,
                            fixed_caption=args.fixed_caption))
    print(f"wrote {out / 'captions.jsonl'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from diffreid.config import EvaluateConfig
    from diffreid.reid.evaluate_model import run

    config = EvaluateConfig(model=args.model, data=args.data, out=args.out, rerank=args.rerank,
                            rank_lists=args.rank_lists, batch_size=args.batch_size, input_size=args.input_size,
                            metric=args.metric, protocol=args.protocol)
    run(config)
    return 0


def _train(args: argparse.Namespace) -> int:
    from diffreid.config import load_train_config
    from diffreid.reid.trainer import run

    overrides = {name: getattr(args, name) for name in ("init", "backbone", "epochs", "batch_p", "batch_k", "lr",
                                                         "input_size", "mixed_precision", "grad_accumulation",
                                                         "eval_data", "eval_every", "num_workers", "seed",
                                                         "merge_generated")
                 if getattr(args, name) is not None}
    overrides.update(_set_fields(args.set))
    config = load_train_config(args.preset, {**overrides, "data": tuple(args.data), "out": args.out})
    out = run(config)
    print(f"wrote {out}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from diffreid.config import FinetuneConfig, build_config
    from diffreid.synthesis.finetune import run

    values = {name: getattr(args, name) for name in ("iir", "encoder_model", "identity_tokens", "images_per_identity",
                                                      "lora_rank",
                                                      "prior_weight", "reference_set", "steps", "batch_size", "lr",
                                                      "mixed_precision", "seed")
              if getattr(args, name) is not None}
    values |= {name: True for name in ("full", "gradient_checkpointing") if getattr(args, name)}
    config = build_config(FinetuneConfig, {**values, **_set_fields(args.set), "data": args.data,
                                           "captions": args.captions, "base_model": args.base_model, "out": args.out})
    print(f"wrote {run(config)}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from diffreid.synthesis.generate import run

    config = GenerateConfig(generator=args.generator, out=args.out, references=args.references, split=args.split,
                            captions=args.captions, reference_guidance=args.reference_guidance,
                            strength=args.strength, references_per_image=args.references_per_image,
                            identity_model=args.identity_model, identity_guidance=args.identity_guidance,
                            identity_until=args.identity_until, per_identity=args.per_identity, shard=args.shard,
                            identities=tuple(args.identities) if args.identities else None, steps=args.steps, guidance=args.guidance, injection=not args.no_injection,
                            batch_size=args.batch_size, seed=args.seed, compile=args.compile, dtype=args.dtype)
    print(f"wrote {run(config)}")
    return 0


def _filter(args: argparse.Namespace) -> int:
    from diffreid.config import FilterConfig
    from diffreid.filtering import run

    config = FilterConfig(generated=tuple(args.generated), scorers=tuple(args.scorer), out=args.out,
                          score=args.score, threshold=args.threshold, percentile=args.percentile,
                          near_duplicate=None if args.no_near_duplicate else args.near_duplicate,
                          reference_splits=tuple(args.reference_splits), shard=args.shard, batch_size=args.batch_size)
    print(f"wrote {run(config)}")
    return 0


def _setting(args: argparse.Namespace) -> int:
    from diffreid.config import SettingConfig
    from diffreid.settings import run

    summary = run(SettingConfig(name=args.name, data=tuple(args.data), out=args.out, target=args.target,
                                init=args.init, label=args.label, preset=args.preset, fraction=args.fraction,
                                one_per_camera=args.one_per_camera, table=args.table, overrides=_set_fields(args.set),
                                eps=args.eps, min_samples=args.min_samples, seed=args.seed))
    print(f"{summary['setting']} ({summary['init']}): Rank-1 {summary['rank1']:.1%}, mAP {summary['mAP']:.1%}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    print(compare_table(args.table, args.baseline, args.min_seeds, args.metric))
    return 0


def _set_fields(items: list[str]) -> dict:
    """`--set FIELD=VALUE` flags, values read as YAML (`null`, lists and numbers work)."""
    import yaml

    fields = {}
    for item in items:
        field, sep, value = item.partition("=")
        if not sep:
            raise DiffreidError(f"--set {item!r} is not FIELD=VALUE")
        fields[field.strip()] = yaml.safe_load(value)
    return fields


def _base_train(args: argparse.Namespace) -> int:
    from diffreid.config import BaseTrainConfig, build_config
    from diffreid.synthesis.base_train import run

    values = {name: getattr(args, name) for name in ("init", "iir", "steps", "batch_size", "lr", "image_size", "codec",
                                                      "tokenizer", "real_caption", "mixed_precision", "seed")
              if getattr(args, name) is not None}
    config = build_config(BaseTrainConfig, {**values, **_set_fields(args.set), "data": tuple(args.data),
                                            "out": args.out})
    print(f"wrote {run(config) / 'model'}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from diffreid.reid.export import export_backbone

    _train(args)
    print(f"wrote {export_backbone(args.out, args.out / 'backbone.safetensors')}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from diffreid.pipeline import run

    out = run(args.config, args.out, until=args.until)
    _print_outcome(out)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from diffreid.pipeline import run
    from diffreid.run_spec import demo_overrides, preset_path

    preset = preset_path(f"demo-{args.preset}")
    out = run(preset, args.out, overrides=demo_overrides(preset, args.target, args.imagenet, args.backbone,
                                                         args.scorer))
    _print_outcome(out)
    return 0


def _study(args: argparse.Namespace) -> int:
    from diffreid.pipeline.study import study

    out = study(args.run, args.out, tuple(args.questions), tuple(args.keep), tuple(args.lengths),
                args.consistency_model, args.init)
    print((out / "study.md").read_text(encoding="utf-8"))
    return 0


def _consistency(args: argparse.Namespace) -> int:
    from diffreid.artifacts import write_json_atomic
    from diffreid.judges.consistency import identity_consistency

    found = {str(folder): identity_consistency(args.model, folder, args.real_camera, args.reference_camera)
             for folder in args.generated}
    print("| images | own centroid cos | nearest other cos | closer to own (95% interval) | Rank-1 | mAP | spread |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    last_real = None
    for folder, scored in found.items():
        for name in ("generated", "real"):
            if name in scored and not (name == "real" and scored[name] == last_real):  # same people: shown once
                row = scored[name]
                if name == "real":
                    last_real = row
                label = folder if name == "generated" else f"real camera {args.real_camera}"
                print(f"| {label} ({row['images']}) | {row['own_centroid_cosine']:.3f} | "
                      f"{row['nearest_other_centroid_cosine']:.3f} | {row['closer_to_own']:.1%} "
                      f"({row['closer_to_own_interval'][0]:.1%}–{row['closer_to_own_interval'][1]:.1%}) | "
                      f"{row['rank1']:.1%} | {row['mAP']:.1%} | {row['spread']:.3f} |")
    if args.out is not None:
        write_json_atomic(args.out, found)
        print(f"wrote {args.out}")
    return 0


def _attributes(args: argparse.Namespace) -> int:
    from diffreid.errors import DiffreidError
    from diffreid.judges.attribute_classifier import train_attribute_classifier
    from diffreid.judges.peta_judge import is_peta, train_peta_judge
    from diffreid.judges.view_judge import train_view_judge

    settings = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, backbone=args.backbone,
                    init=args.init)
    print(f"training the {'view judge' if args.judge == 'views' else 'attribute classifier'} into {args.out}")
    held_out = {} if args.held_out_fraction is None else {"held_out_fraction": args.held_out_fraction}
    if args.judge == "views":
        train_view_judge(args.data, args.out, **held_out, **settings)
    elif is_peta(args.data):
        train_peta_judge(args.data, args.out, **held_out, **settings)
    elif args.held_out_fraction is not None:
        raise DiffreidError("--held-out-fraction is for PETA sets; procedural persons are scored on their own "
                            "query and gallery identities")
    else:
        train_attribute_classifier(args.data, args.out, **settings)
    print(f"wrote {args.out} (held-out accuracy in {args.out / 'accuracy.json'})")
    return 0


def _fidelity(args: argparse.Namespace) -> int:
    from diffreid.artifacts import write_json_atomic
    from diffreid.judges.view_judge import judge_generated

    found = {str(folder): judge_generated(args.judge, folder) for folder in args.generated}
    if any("views" in scores for scores in found.values()):
        _print_views(found)
    if any("attributes" in scores for scores in found.values()):
        _print_attribute_fidelity(found)
    if args.out is not None:
        write_json_atomic(args.out, found)
    return 0


def _print_views(found: dict) -> None:
    print("| generated | injected viewpoint | images | read as |")
    print("| --- | --- | --- | --- |")
    for folder, scores in found.items():
        for group, read in scores.get("views", {}).items():
            shares = ", ".join(f"{view} {100 * share:.1f}%" for view, share in read["read_as"].items())
            print(f"| {folder} | {group} | {read['images']} | {shares} |")


def _print_attribute_fidelity(found: dict) -> None:
    print("| generated | attribute | generated images | real images (ceiling) | share of ceiling |")
    print("| --- | --- | --- | --- | --- |")
    for folder, scores in found.items():
        if "attributes" not in scores:
            continue
        for name, score in scores["attributes"].items():
            if score["generated"] is not None:
                share = "n/a" if score["share_of_real"] is None else f"{score['share_of_real']:.2f}"
                print(f"| {folder} ({scores['generated_images']}, {scores['identities']} ids) | {name} | "
                      f"{100 * score['generated']:.1f} | {100 * score['real']:.1f} | {share} |")
        if scores["judge_trained_on"]:
            print(f"warning: the judge trained on {scores['judge_trained_on']} of {folder}'s identities")


def _diversity(args: argparse.Namespace) -> int:
    from diffreid.artifacts import write_json_atomic
    from diffreid.judges.attribute_classifier import load_attribute_classifier
    from diffreid.judges.attribute_diversity import new_attribute_values

    classifier = load_attribute_classifier(args.classifier)
    found = {str(folder): new_attribute_values(classifier, folder, args.per_identity) for folder in args.generated}
    print("| images | identities | values read on the input | on the generated | new: generated only |")
    print("| --- | --- | --- | --- | --- |")
    for folder, counted in found.items():
        print(f"| {folder} ({counted['images']}) | {counted['identities']} | {counted['input_values']:.2f} | "
              f"{counted['generated_values']:.2f} | {counted['new_values']:.2f} |")
    if args.out is not None:
        write_json_atomic(args.out, found)
        print(f"wrote {args.out}")
    return 0


def _print_outcome(out: Path) -> None:
    import json

    report = out / "report.json"
    if report.is_file():
        print(json.loads(report.read_text(encoding="utf-8"))["claim"]["text"])
        print(f"wrote {out / 'report.html'}")
    else:
        print(f"wrote {out}")


def _export(args: argparse.Namespace) -> int:
    from diffreid.reid.export import export_backbone

    print(f"wrote {export_backbone(args.run, args.out)}")
    return 0


def _benchmark_small(args: argparse.Namespace) -> int:
    from diffreid.small_benchmark import render_table, run, table_rows

    if args.label is not None and len(args.label) != len(args.model):
        raise DiffreidError(f"{len(args.label)} --label for {len(args.model)} --model; give one label per model, "
                            "in order, or none")
    results = run(args.model, args.out, trials=args.trials, seed=args.seed, root=args.peta,
                  datasets=args.datasets, lists=args.list, batch_size=args.batch_size, input_size=args.input_size)
    print(render_table(results), end="")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    if args.table is not None:
        for row in table_rows(results, args.label):
            append_row(args.table, row)
        print(f"added {len(results['models'])} models' rows to {args.table / 'results.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except DiffreidError as error:
        print(f"diffreid: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diffreid: interrupted", file=sys.stderr)
        return 130
