"""One description per identity from the captions of its images (the identity's LPE text).

Captions are split into phrases at commas and "and"; a phrase at least `quorum` of the
captions contain (case-insensitive) is something the images agree on. The description
keeps those phrases, in the order of the caption that agrees most with the rest, with
the separators they had there, so identical captions give that caption back and
"a man wearing a black shirt and blue jeans" survives one image that saw "jeans" only.
"""

from __future__ import annotations

import re
from collections import Counter

_SEPARATOR = re.compile(r"\s*(,|\band\b)\s*")


def _phrases(caption: str) -> list[tuple[str, str]]:
    """[(separator before it, phrase)]: the first phrase has separator ''."""
    parts = _SEPARATOR.split(caption.strip().rstrip("."))
    pairs = [("", parts[0])] + [(", " if sep == "," else " and ", text) for sep, text in zip(parts[1::2], parts[2::2])]
    return [(sep, text.strip()) for sep, text in pairs if text.strip()]


def merge_captions(captions: list[str], quorum: float = 0.5) -> str:
    """The phrases at least `quorum` of the captions share; the most central caption when none do."""
    parsed = [_phrases(caption) for caption in captions if caption.strip()]
    if not parsed:
        return ""
    support = Counter(key for phrases in parsed for key in {text.lower() for _, text in phrases})
    agreed = {key for key, count in support.items() if count >= quorum * len(parsed)}

    def centrality(index: int) -> tuple[float, int]:
        keys = {text.lower() for _, text in parsed[index]}
        return sum(support[key] if key in agreed else -1 for key in keys), -index

    order = sorted(range(len(parsed)), key=centrality, reverse=True)
    if not agreed:
        return "".join(sep + text for sep, text in parsed[order[0]])
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index in order:
        for sep, text in parsed[index]:
            if text.lower() in agreed and text.lower() not in seen:
                seen.add(text.lower())
                kept.append((sep or ", ", text))
    return kept[0][1] + "".join(sep + text for sep, text in kept[1:])
