"""Image file validation: why a file cannot serve as a training or test image, if it cannot.

A 100k-image dataset usually holds a few broken files (interrupted copies, zero-byte
placeholders); finding them up front beats a crash hours into a run.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
_FIX = "restore it from the dataset archive or delete it"


def is_image_name(path: Path) -> bool:
    """Whether a directory entry is meant to be an image (not Thumbs.db, not a hidden file)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def file_problem(path: Path) -> str | None:
    """A reason the file cannot be an image without opening it (missing, empty), or None."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return "image file missing; restore it from the dataset archive"
    except OSError as error:
        return f"cannot read image file ({error.strerror}); check its permissions"
    if size == 0:
        return f"empty image file (0 bytes); {_FIX}"
    return None


def image_problem(path: Path) -> str | None:
    """A reason the file is not a decodable image (missing, empty, truncated, not an image), or None."""
    problem = file_problem(path)
    if problem is not None:
        return problem
    try:
        with Image.open(path) as image:
            image.load()  # decode every pixel: truncation only shows here
    except UnidentifiedImageError:
        return f"not a decodable image; {_FIX}"
    except (OSError, SyntaxError, ValueError) as error:
        return f"corrupt image ({error}); {_FIX}"
    return None
