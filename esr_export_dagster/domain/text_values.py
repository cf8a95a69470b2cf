"""A text value as an ESR file carries it: what rendering writes and what validation judges, in one place.

A record must be judged by the value that reaches the file, not by the value stored: a name made only of
control characters is stored as something but written as a blank. So the renderer and the mandatory-field
checks both go through ``normalise_text``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Every character a line splitter takes for a line break (Python's str.splitlines: \n \v \f \r \x1c \x1d
# \x1e \x85 \u2028 \u2029; CSV readers: \r and \n), the other C0 controls, DEL and the C1 controls. Any
# of them inside a value would split a record over two lines for some reader, or be invisible in ESR.
_LINE_BREAKS_AND_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def normalise_text(text: str) -> str:
    """``text`` with every run of line breaks and control characters replaced by one space."""
    # Every character the pattern matches is unprintable, so the cheap test spares it almost every value.
    if text.isprintable():
        return text
    return _LINE_BREAKS_AND_CONTROLS.sub(" ", text)


def mandatory_text_as_written(value: Any) -> str | None:
    """The text a mandatory text field is written as; ``None`` when it is not text or would be blank.

    Only a string is text here: a number, a list or a sub-document in a mandatory name or post number is
    a data error upstream, never something to write.
    """
    if not isinstance(value, str):
        return None
    written = normalise_text(value)
    return written if _has_visible_character(written) else None


def _has_visible_character(text: str) -> bool:
    """Whether anything would show: spaces and format characters (zero-width space, joiners, byte-order
    mark, soft hyphen: Unicode category Cf) alone write a name nobody can read."""
    return any(not character.isspace() and unicodedata.category(character) != "Cf" for character in text)
