"""The one sentence shape every attribute source is written in, so their captions read alike.

"a young woman with long hair, wearing a short-sleeved white top and a long black skirt,
carrying a handbag": commas and "and" separate the phrases, which is also what
`descriptions.merge_captions` splits on.
"""

from __future__ import annotations


def with_article(phrase: str) -> str:
    """'a' or 'an' before a singular noun phrase (by its first letter; the vocabularies here have no 'hour')."""
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def join_and(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def person_sentence(subject: str, features: list[str], wearing: list[str], carrying: list[str]) -> str:
    """'{subject} with {features}, wearing {wearing}, carrying {carrying}', leaving out empty parts.

    The comma before "wearing" only follows a "with" list: "a man wearing a black top" needs none.
    """
    text = subject + (f" with {join_and(features)}," if features else "")
    if wearing:
        text += f" wearing {join_and(wearing)}"
    if carrying:
        text += f", carrying {join_and(carrying)}"
    return text
