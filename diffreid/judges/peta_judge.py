"""The attribute judge trained on real people: PETA's labels (`diffreid attributes --data peta-all:ROOT`).

PETA labels identities, not images, and its labels are sets: a shirt may be black and
white, a person may carry a backpack and a suitcase. Each judged attribute is one softmax
head over a coarse class set (`CLASSES`); an identity's labels become the set of classes
they name, the training target is spread evenly over that set, and a prediction counts
as right when its argmax is one of them. An identity with no label for an attribute is
neither trained nor scored on it.

Identities (never images) are split into training and held-out ones, per PETA set and
deterministically from the seed; the held-out ones are listed in `accuracy.json`
(`held_out_identities`, read back by `held_out_identities`) so that later users of the
judge know which people it never saw.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from diffreid.artifacts import write_json_atomic
from diffreid.data import load_dataset
from diffreid.data.peta import FORMATS as PETA_FORMATS, LABEL_FILE, PID_STRIDE, held_out_people, identity_key, judge_held_out
from diffreid.data.peta_labels import COLOURS, PetaAttributes, decode, read_label_file
from diffreid.data.registry import parse_spec
from diffreid.errors import DiffreidError
from diffreid.judges.attribute_classifier import INPUT_SIZE, AttributeNet, fit
from diffreid.reid.init import resolve_init

log = logging.getLogger(__name__)
OTHER = "other"
# the judged attributes and their classes; upper type "other" = none of the four named types
CLASSES: dict[str, tuple[str, ...]] = {
    "upper colour": COLOURS,
    "lower colour": COLOURS,
    "upper type": ("jacket", "suit", "sweater", "t-shirt", OTHER),
    "lower type": ("jeans", "trousers", "shorts", "skirt"),
    "carrying": ("nothing", "backpack", "shoulder bag", "plastic bag", "suitcase or luggage", OTHER),
    "gender": ("male", "female"),
}
# decode()'s words -> a class; a word not listed falls in OTHER
UPPER_TYPE = {"jacket": "jacket", "suit jacket": "suit", "sweater": "sweater", "t-shirt": "t-shirt"}
LOWER_TYPE = {"jeans": "jeans", "trousers": "trousers", "suit trousers": "trousers", "capri trousers": "trousers",
              "shorts": "shorts", "hot pants": "shorts", "short skirt": "skirt", "long skirt": "skirt"}
CARRYING = {"backpack": "backpack", "shoulder bag": "shoulder bag", "plastic bags": "plastic bag",
            "suitcase": "suitcase or luggage", "luggage case": "suitcase or luggage"}

Classes = dict[str, frozenset[str]]  # attribute -> the acceptable classes; an unlabelled attribute is absent


def peta_classes(attributes: PetaAttributes) -> Classes:
    """The classes of each judged attribute an identity's labels allow; unlabelled attributes left out."""
    carried = frozenset(CARRYING.get(word, OTHER) for word in attributes.carrying)
    if not carried and "carryingNothing" in attributes.labels:
        carried = frozenset({"nothing"})
    found = {
        "upper colour": frozenset(attributes.upper_colours),
        "lower colour": frozenset(attributes.lower_colours),
        "upper type": frozenset(UPPER_TYPE[word] for word in attributes.upper_types) or frozenset({OTHER}),
        "lower type": frozenset(LOWER_TYPE[word] for word in attributes.lower_types),
        "carrying": carried,
        "gender": frozenset({attributes.gender} - {None}),
    }
    return {name: values for name, values in found.items() if values}


def is_peta(specs: list[str]) -> bool:
    """True when every spec is a PETA set, False when none is; mixing them is refused."""
    peta = [parse_spec(spec)[0] in PETA_FORMATS for spec in specs]
    if any(peta) and not all(peta):
        raise DiffreidError("the attribute judge learns either PETA's labels or procedural persons' attributes, "
                            "not both at once: pass only PETA sets or only procedural datasets to --data")
    return all(peta)


@dataclass(frozen=True)
class PetaImage:
    path: Path
    data: str  # the dataset spec it was read from
    set: str  # its PETA set's folder name
    pid: int
    classes: Classes

    @property
    def identity(self) -> tuple[str, int]:
        return self.data, self.pid


def peta_images(spec: str) -> list[PetaImage]:
    """Every image of a PETA spec whose identity Label.txt labels, with its classes."""
    dataset = load_dataset(spec)
    for problem in dataset.problems:
        log.warning("%s: %s", spec, problem)
    tables: dict[Path, dict[int, Classes]] = {}
    unlabelled: Counter = Counter()
    items = []
    for record in dataset.train:
        folder = Path(record.path).parent
        if folder not in tables:
            tables[folder] = _label_table(folder / LABEL_FILE)
        classes = tables[folder].get(identity_key(record.path))
        if classes is None:
            unlabelled[folder.name] += 1
            continue
        items.append(PetaImage(Path(record.path), spec, folder.name, record.pid, classes))
    for name, count in unlabelled.items():
        log.warning("%s: %d images of identities %s does not list; left out", spec, count, name + "/" + LABEL_FILE)
    if not items:
        raise DiffreidError(f"{spec}: no image has an identity its {LABEL_FILE} labels")
    return items


def _label_table(path: Path) -> dict[int, Classes]:
    if not path.is_file():
        raise DiffreidError(f"{path}: missing; the attribute judge learns PETA's labels from the {LABEL_FILE} "
                            "PETA ships in every set's folder")
    table, problems = read_label_file(path)
    for problem in problems:
        log.warning("%s", problem)
    return {key: peta_classes(decode(labels)) for key, labels in table.items()}


def split_identities(items: list[PetaImage], fraction: float, seed: int) -> set[tuple[str, int]]:
    """The held-out identities: `fraction` of each PETA set's identities (rounded), drawn from `seed`."""
    if not 0 < fraction < 1:
        raise DiffreidError(f"--held-out-fraction {fraction}: must be between 0 and 1")
    groups: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        groups[item.data, item.set].add(item.pid)
    held_out = set()
    for (data, name), pids in sorted(groups.items()):
        drawn = random.Random(f"{seed}:{data}:{name}").sample(sorted(pids), round(fraction * len(pids)))
        held_out |= {(data, pid) for pid in drawn}
    if not held_out:
        raise DiffreidError(f"--held-out-fraction {fraction} holds out no identity of {len(groups)} set(s); raise it")
    return held_out


def held_out_identities(folder: str | Path) -> set[tuple[str, int]]:
    """(dataset spec, pid) of every identity a PETA judge was not trained on, from its accuracy.json."""
    return {(entry["data"], int(entry["pid"])) for entry in judge_held_out(folder)}


def set_accuracy(predictions: list[dict[str, str]], items: list[PetaImage],
                 table: dict[str, tuple[str, ...]] = CLASSES) -> dict[str, dict]:
    """Per attribute of `table`: share of scored images whose prediction is one of their identity's classes, the
    same averaged per identity, counts, the best constant answer's rate (majority) and a uniform guess's (chance)."""
    scores = {}
    for name, classes in table.items():
        scored = [(p[name], item) for p, item in zip(predictions, items) if name in item.classes]
        if not scored:
            scores[name] = {"images": 0, "identities": 0}
            continue
        per_identity = defaultdict(list)
        for predicted, item in scored:
            per_identity[item.identity].append(predicted in item.classes[name])
        covers = Counter(value for _, item in scored for value in item.classes[name])
        majority = max(classes, key=lambda value: covers[value])
        scores[name] = {
            "accuracy": sum(predicted in item.classes[name] for predicted, item in scored) / len(scored),
            "identity_accuracy": sum(sum(hits) / len(hits) for hits in per_identity.values()) / len(per_identity),
            "images": len(scored), "identities": len(per_identity),
            "majority": {"class": majority, "rate": covers[majority] / len(scored)},
            "chance": sum(len(item.classes[name]) for _, item in scored) / len(scored) / len(classes)}
    return scores


def predict_files(net: AttributeNet, paths: list[Path], batch_size: int = 128, desc: str = "images") -> list[dict]:
    """`net`'s reading of image files, opened a batch at a time (a judged set may not fit in memory)."""
    predictions: list[dict[str, str]] = []
    for start in tqdm(range(0, len(paths), batch_size), desc=desc):
        images = []
        for path in paths[start:start + batch_size]:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        predictions += net.predict(images, batch_size)
    return predictions


def judge_accuracy(net: AttributeNet, items: list[PetaImage], batch_size: int = 128,
                   table: dict[str, tuple[str, ...]] = CLASSES) -> dict:
    """`set_accuracy` of `net` on `items`, overall and per PETA set."""
    predictions = predict_files(net, [item.path for item in items], batch_size, "held-out images")
    by_set = defaultdict(list)
    for prediction, item in zip(predictions, items):
        by_set[item.set].append((prediction, item))
    return {"attributes": set_accuracy(predictions, items, table),
            "by_set": {name: {attribute: score.get("accuracy") for attribute, score in
                              set_accuracy([p for p, _ in pairs], [i for _, i in pairs], table).items()}
                       for name, pairs in sorted(by_set.items())}}


def soft_targets(items: list[PetaImage], table: dict[str, tuple[str, ...]] = CLASSES) -> dict[str, torch.Tensor]:
    """Per attribute, an images x classes matrix: each row spread evenly over the image's classes, zero if unlabelled."""
    targets = {}
    for name, classes in table.items():
        rows = torch.zeros(len(items), len(classes))
        for row, item in enumerate(items):
            for value in item.classes.get(name, ()):
                rows[row, classes.index(value)] = 1 / len(item.classes[name])
        targets[name] = rows
    return targets


def set_loss(logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over attributes of the cross-entropy against the spread targets, over the images labelled for each."""
    total = torch.zeros(())
    for name, target in targets.items():
        labelled = target.sum(1) > 0
        if labelled.any():
            total = total - (target[labelled] * F.log_softmax(logits[name][labelled], 1)).sum(1).mean()
    return total


def train_peta_judge(specs: list[str], out: Path, held_out_fraction: float = 0.2, **settings) -> AttributeNet:
    """Train the judge on PETA's labels of the training identities; write the held-out accuracy to
    out/accuracy.json beside each attribute's majority-class and chance rates, and the held-out identities.
    `settings`: those of `train_judge`."""
    items = [item for spec in specs for item in peta_images(spec)]
    return train_judge(items, CLASSES, out, {"labels": "peta", "data": list(specs)}, held_out_fraction, **settings)


def train_judge(items: list[PetaImage], table: dict[str, tuple[str, ...]], out: Path, about: dict,
                held_out_fraction: float = 0.2, epochs: int = 4, batch_size: int = 64, lr: float = 1e-3,
                seed: int = 0, backbone: str = "resnet18", init: str = "scratch") -> AttributeNet:
    """One softmax head per entry of `table`, trained on the items of the training identities and scored on the
    held-out ones; `about` (what it learnt from: labels, data) heads classifier.json and accuracy.json."""
    torch.manual_seed(seed)
    held_out = split_identities(items, held_out_fraction, seed)
    train = [item for item in items if item.identity not in held_out]
    test = [item for item in items if item.identity in held_out]
    log.info("judge on %s: %d training identities (%d images), %d held out (%d images); writing %s", about["labels"],
             len({i.identity for i in train}), len(train), len(held_out), len(test), out)
    net = AttributeNet({name: list(classes) for name, classes in table.items()}, backbone,
                       resolve_init(init, backbone))
    images = []
    for item in tqdm(train, desc="loading images"):
        with Image.open(item.path) as image:
            images.append(TF.resize(TF.to_image(image.convert("RGB")), list(INPUT_SIZE), antialias=True))
    targets = soft_targets(train, table)
    started = time.monotonic()
    fit(net, images, lambda logits, index: set_loss(logits, {n: t[index] for n, t in targets.items()}),
        epochs, min(batch_size, len(train)), lr, out)
    seconds = time.monotonic() - started
    net.save(out, **about)
    scores = judge_accuracy(net, test, table=table)
    write_json_atomic(out / "accuracy.json", {
        **about, "seed": seed, "held_out_fraction": held_out_fraction,
        "backbone": backbone, "init": init, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "input_size": list(INPUT_SIZE), "train_seconds": round(seconds, 1),
        "train": {"identities": len({i.identity for i in train}), "images": len(train)},
        "held_out": {"identities": len(held_out), "images": len(test)},
        "accuracy": {name: score.get("accuracy") for name, score in scores["attributes"].items()},
        **scores,
        "held_out_identities": [{"data": data, "set": name, "pid": pid} for data, name, pid in
                                sorted({(i.data, i.set, i.pid) for i in test})]})
    log.info("%s judge: held-out accuracy %s (written to %s)", about["labels"],
             {name: None if acc is None else round(acc, 3) for name, acc in
              ((n, s.get("accuracy")) for n, s in scores["attributes"].items())}, out / "accuracy.json")
    return net


def peta_fidelity(judge: str | Path, generated: str | Path, batch_size: int = 128) -> dict:
    """Do images generated of PETA people show their labelled attributes? The judge's accuracy on
    them, beside its accuracy on those people's real images (its ceiling) and their ratio.

    Identities the judge trained on are counted apart (`judge_trained_on`): for an honest
    reading they should be none, i.e. the generated people are among its held-out ones."""
    from diffreid.filtering.generated import read_generated
    from diffreid.judges.attribute_classifier import load_attribute_classifier

    net = load_attribute_classifier(judge)
    source, made = read_generated(generated)
    pids = {item.pid for item in made}
    real = [item for item in peta_images(source) if item.pid in pids]
    person = {item.pid: item for item in real}
    unlabelled = pids - set(person)
    if unlabelled:
        log.warning("%s: %d generated identities have no labels in %s; left out", generated, len(unlabelled), source)
    drawn = [PetaImage(item.path, source, person[item.pid].set, item.pid, person[item.pid].classes)
             for item in made if item.pid in person]
    if not drawn:
        raise DiffreidError(f"{generated}: none of its identities is labelled by the Label.txt of {source}")
    held_out = held_out_people(judge)
    seen = {pid for pid, item in person.items() if (item.set, pid % PID_STRIDE) not in held_out}
    generated_scores = judge_accuracy(net, drawn, batch_size)["attributes"]
    real_scores = judge_accuracy(net, real, batch_size)["attributes"]
    return {"source": source, "identities": len(person), "judge_trained_on": len(seen),
            "generated_images": len(drawn), "real_images": len(real),
            "attributes": {name: {"generated": generated_scores[name].get("accuracy"),
                                  "real": real_scores[name].get("accuracy"),
                                  "share_of_real": (generated_scores[name]["accuracy"] / real_scores[name]["accuracy"]
                                                    if real_scores[name].get("accuracy") else None)}
                           for name in CLASSES}}
