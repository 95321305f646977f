"""Diversity Injection (DI): fine-grained attributes a person's input sequence lacks.

A Re-ID dataset shows each person in a few cameras, from a few sides, in one outfit's
worth of situations. DI teaches the fine-tuned model to keep drawing the attributes its
base model knows (the attribute reference set, with the fine-grain-specific prior
preservation loss) and asks for them at sampling (attribute phrases absent from the
identity's captions joined to its prompt).
"""

from __future__ import annotations

import logging
import re

import numpy as np

log = logging.getLogger(__name__)

COLOURS = ("black", "white", "grey", "red", "blue", "navy blue", "light blue", "green", "yellow", "orange",
           "purple", "pink", "brown", "beige", "khaki")
UPPER = ("t-shirt", "long-sleeved shirt", "jacket", "coat", "hoodie", "sweater", "blouse", "vest")
LOWER = ("trousers", "jeans", "shorts", "skirt", "dress")
# a named view (SARC3D's and MIT's file names, procedural renders) in the words DI injects, so that
# captions of real images teach the base model the very phrases sampling asks for
VIEW_PHRASES = {"front": "front view", "back": "back view", "left": "left side view", "right": "right side view"}
VOCABULARY: dict[str, tuple[str, ...]] = {
    "carrying": ("carrying a backpack", "carrying a handbag", "carrying a shoulder bag", "carrying a suitcase",
                 "holding an umbrella", "holding a phone", "carrying a shopping bag", "empty-handed"),
    "action": ("walking", "standing still", "running", "talking on a phone", "looking at a phone",
               "riding a bicycle", "waiting", "crossing the street"),
    "pose": ("mid-stride", "arms at the sides", "hands in pockets", "turning the head", "arms crossed",
             "leaning forward"),
    "viewpoint": (*VIEW_PHRASES.values(), "three-quarter view"),
    "camera height": ("seen from a high surveillance camera", "seen at eye level", "seen from slightly above",
                      "seen from a low angle"),
    "scene": ("on a campus walkway", "in a shopping mall", "on a city street", "in a parking lot",
              "at a train station", "in a park", "in an office corridor", "at a crosswalk"),
    "light": ("in bright sunlight", "in the shade", "under fluorescent light", "at dusk", "at night under street "
              "lamps", "on an overcast day", "in the rain", "in snow"),
}
INJECTED = ("viewpoint", "pose", "scene", "light")  # what sampling adds to an identity's prompt


def clothing(rng: np.random.Generator) -> str:
    return (f"wearing a {rng.choice(COLOURS)} {rng.choice(UPPER)} and "
            f"{rng.choice(COLOURS)} {rng.choice(LOWER)}")


def reference_prompt(seed: int) -> str:
    """One fine-grained prompt: clothing, one phrase of each category, drawn from `seed`."""
    rng = np.random.default_rng(seed)
    phrases = [clothing(rng)] + [str(rng.choice(options)) for options in VOCABULARY.values()]
    return "a photo of a person " + ", ".join(phrases)


def injected_attributes(captions: list[str], rng: np.random.Generator,
                        categories: tuple[str, ...] = INJECTED) -> list[str]:
    """One phrase per category that none of the identity's captions mentions (a category
    whose every phrase is mentioned is skipped)."""
    said = " ".join(captions).lower()
    chosen = []
    for category in categories:
        absent = [phrase for phrase in VOCABULARY[category] if phrase.lower() not in said]
        if absent:
            chosen.append(str(rng.choice(absent)))
    return chosen


def words(texts: list[str]) -> set[str]:
    """The lower-case words of some captions (what a text encoder was trained to read)."""
    return {word for text in texts for word in re.findall(r"[a-z]+", text.lower())}


def unlearnt_phrases(known: set[str], categories: tuple[str, ...] = INJECTED) -> list[str]:
    """Phrases DI can inject holding a word that no base-train caption held: a text encoder
    that never read them gives them no meaning, so injecting them adds noise, not attributes."""
    return [phrase for category in categories for phrase in VOCABULARY[category] if words([phrase]) - known]


def warn_unlearnt_phrases(known: set[str] | None, base_model: str) -> list[str]:
    """Name the injectable phrases `base_model`'s captions never held (nothing when it kept no record)."""
    phrases = [] if known is None else unlearnt_phrases(known)
    if phrases:
        log.warning("%s: its text encoder never read the words of %d phrases Diversity Injection injects: %s. "
                    "Injected, they change little; base-train it on captions that hold them (e.g. PETA's SARC3D "
                    "and MIT views), or generate with --no-injection", base_model, len(phrases), "; ".join(phrases))
    return phrases


def prior_preservation_loss(identity_loss, prior_loss, weight: float):
    """FSPP: L = L_id + λ · L_prior, where L_prior denoises attribute-reference images under
    their own fine-grained prompts (DreamBooth's prior preservation, made attribute-specific)."""
    return identity_loss if prior_loss is None or weight == 0 else identity_loss + weight * prior_loss
