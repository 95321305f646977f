"""Captions from PETA's attribute labels (`Label.txt`, see `diffreid.data.peta_labels`).

Labels are per identity, in the `Label.txt` beside the images (keys matched as integers
to the leading number of a file name); SARC3D and MIT also name the view, so a caption
is per image: "a young woman with long black hair, wearing a white short-sleeved
t-shirt, black trousers and black shoes, carrying a backpack, back view". The view is
said in Diversity Injection's own words (`VIEW_PHRASES`), so the base model learns the
phrases sampling injects; it is its own comma-separated phrase, so an identity's description (the phrases most
of its captions share) drops it when the identity is seen from several views.

Where PETA's vocabulary overlaps itself, the caption says the more specific word
(jeans rather than jeans and trousers, sneakers rather than sneakers and shoes); colours
are labelled per body part, not per garment, so with two garments of one part they go
to the first (outer) one. Left out: formal / casual, upperBodyOther (a "top"),
lowerBody patterns, the age bands 30-45 and 45-60 (both "man" / "woman").
"""

from __future__ import annotations

import logging
from pathlib import Path

from diffreid.data.peta import LABEL_FILE, SETS, identity_key, view_of
from diffreid.data.peta_labels import PetaAttributes, decode, read_label_file
from diffreid.data.records import Record
from diffreid.synthesis.diversity import VIEW_PHRASES
from diffreid.synthesis.captioners.phrasing import join_and, person_sentence, with_article

log = logging.getLogger(__name__)

FORMATS = frozenset(SETS) | {"peta-all"}  # dataset names whose images have a Label.txt beside them
_SUBJECTS = {"child": ("boy", "girl", "child"), "young": ("young man", "young woman", "young person"),
             "old": ("old man", "old woman", "old person")}
_HAIR_COLOURS = {"yellow": "blond"}
_LONG_SLEEVED = {"jacket", "suit jacket", "sweater"}  # long sleeves go without saying
_BEFORE, _NECK = {"a plaid pattern": "plaid"}, {"a v-neck": "v-neck"}  # said before the garment, not "with ..."
_SKIRTS = {"short skirt": "short", "long skirt": "long"}
_GENERAL = {"trousers": ("jeans", "suit trousers", "capri trousers"), "shoes": ("leather shoes", "sneakers", "boots",
                                                                               "sandals")}
_PUSHED = {"baby buggy", "shopping trolley"}
_PLURAL = {"plastic bags"}


def is_peta(dataset_name: str) -> bool:
    return dataset_name in FORMATS


def peta_caption(attributes: PetaAttributes, view: str | None = None) -> str:
    """One identity's labels (and the image's view, where known) as one sentence."""
    subject = _subject(attributes)
    sentence = person_sentence(subject, _features(attributes), _wearing(attributes), []).rstrip(",")
    carried, pushed = _carried(attributes), [with_article(i) for i in attributes.carrying if i in _PUSHED]
    for verb, items in (("carrying", carried), ("pushing", pushed)):
        if items:  # "a person carrying something", else after a comma as person_sentence puts it
            sentence += f"{' ' if sentence == subject else ', '}{verb} {join_and(items)}"
    return f"{sentence}, {VIEW_PHRASES[view]}" if view else sentence


def _subject(a: PetaAttributes) -> str:
    male, female, person = _SUBJECTS.get(a.age, ("man", "woman", "person"))
    return with_article({"male": male, "female": female}.get(a.gender, person))


def _colours(colours: tuple[str, ...], words: dict[str, str] | None = None) -> str:
    """'black ', 'black and white ', '' (none labelled): the colour words before a noun."""
    return join_and([(words or {}).get(c, c) for c in colours]) + " " if colours else ""


def _features(a: PetaAttributes) -> list[str]:
    if a.hair == "bald":
        return ["a bald head"]
    hair = f"{a.hair + ' ' if a.hair else ''}{_colours(a.hair_colours, _HAIR_COLOURS)}"
    return [f"{hair}hair"] if hair else []


def _specific(items: tuple[str, ...]) -> list[str]:
    """Items less the general words a more specific one already says ('trousers' beside 'jeans')."""
    return [i for i in items if not any(other in items for other in _GENERAL.get(i, ()))]


def _wearing(a: PetaAttributes) -> list[str]:
    """Garments outer to lower to feet, then accessories: one item each, so no list nests inside another."""
    return [*_upper(a), *_lower(a), *_footwear(a), *a.accessories]


def _upper(a: PetaAttributes) -> list[str]:
    """['a white short-sleeved v-neck t-shirt with a logo'], ['a black plaid jacket over a t-shirt'], [] (nothing
    labelled); long sleeves go unsaid on jackets and sweaters."""
    if not (a.upper_colours or a.upper_types or a.sleeves or a.upper_patterns):
        return []
    outer, *inner = a.upper_types or ("top",)
    sleeves = "" if a.sleeves is None or (a.sleeves == "long-sleeved" and outer in _LONG_SLEEVED) else a.sleeves + " "
    before = "".join(f"{_BEFORE[p]} " for p in a.upper_patterns if p in _BEFORE)
    neck = "".join(f"{_NECK[p]} " for p in a.upper_patterns if p in _NECK)
    phrase = with_article(f"{_colours(a.upper_colours)}{before}{sleeves}{neck}{outer}")
    after = [p for p in a.upper_patterns if p not in _BEFORE and p not in _NECK]
    if after:
        phrase += f" with {join_and(after)}"
    return ["".join([phrase, *(f" over {with_article(kind)}" for kind in inner)])]


def _garment(colours: str, kind: str) -> str:
    """'black trousers', 'a short black skirt' (length before colour)."""
    if kind in _SKIRTS:
        return with_article(f"{_SKIRTS[kind]} {colours}skirt")
    return f"{colours}{kind}"


def _lower(a: PetaAttributes) -> list[str]:
    kinds = _specific(a.lower_types)
    if "jeans" in kinds and "shorts" in kinds:
        kinds = ["denim shorts" if k == "shorts" else k for k in kinds if k != "jeans"]
    if not kinds and not a.lower_colours:
        return []
    first, *rest = kinds or ["bottoms"]
    return [_garment(_colours(a.lower_colours), first), *(_garment("", kind) for kind in rest)]


def _footwear(a: PetaAttributes) -> list[str]:
    kinds = _specific(a.footwear)
    if not kinds and not a.footwear_colours:
        return []
    first, *rest = kinds or ["shoes"]
    return [f"{_colours(a.footwear_colours)}{first}", *rest]


def _carried(a: PetaAttributes) -> list[str]:
    """Carried objects; PETA's carryingOther is "something", "something else" beside named ones."""
    named = [item if item in _PLURAL else with_article(item) for item in a.carrying
             if item not in _PUSHED and item != "something"]
    if "something" in a.carrying:
        named.append("something else" if named else "something")
    return named


class PetaCaptioner:
    """Captions from PETA labels: the Label.txt beside each image, or one `label_file` for every image.

    Images whose Label.txt is missing or lacks their key are reported once per identity and skipped.
    """

    def __init__(self, label_file: Path | None = None):
        self.label_file = label_file
        self._tables: dict[Path, dict[int, frozenset[str]] | None] = {}
        self._captions: dict[tuple[Path, int, str | None], str] = {}
        self._reported: set[tuple[Path, int | None]] = set()
        if label_file is not None:
            self._table(label_file)  # a bad file fails before any work

    def _table(self, path: Path) -> dict[int, frozenset[str]] | None:
        if path not in self._tables:
            table = None
            if path.is_file():
                table, problems = read_label_file(path)
                for problem in problems:
                    log.warning("%s: %s", problem.path, problem.message)
            self._tables[path] = table
        return self._tables[path]

    def caption(self, records: list[Record]) -> list[str | None]:
        return [self._caption(record) for record in records]

    def _caption(self, record: Record) -> str | None:
        path = self.label_file or record.path.parent / LABEL_FILE
        table, key, view = self._table(path), identity_key(record.path), view_of(record.path)
        if table is None or key not in table:
            if (path, key) not in self._reported:
                self._reported.add((path, key))
                reason = "not found" if table is None else f"has no labels for identity {key}"
                log.warning("%s %s; the images of identity %d (%s, ...) are skipped", path, reason, record.pid,
                            record.path.name)
            return None
        if (path, key, view) not in self._captions:
            self._captions[path, key, view] = peta_caption(decode(table[key]), view)
        return self._captions[path, key, view]
