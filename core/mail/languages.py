"""Language tags of templates and candidates, and which language version a candidate reads.

A template has its own language and any number of translations; a candidate has a BCP 47
tag ("nl", "nl-BE", "pt_BR" as some systems write it). The choice is made here and only
here, so that a preview and every way of sending pick the same version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["normalize_language", "pick_language", "primary_subtag"]

_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")
MAX_TAG = 35


def normalize_language(tag: str | None) -> str | None:
    """The tag in its usual spelling ("NL_be" → "nl-BE", "zh-hant-tw" → "zh-Hant-TW"), or
    None when it is not a language tag."""
    if not isinstance(tag, str):
        return None
    tag = tag.strip()
    if not tag or len(tag) > MAX_TAG or not _TAG.fullmatch(tag):
        return None
    parts = re.split(r"[-_]", tag)
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # script
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())  # region
        else:
            out.append(part.lower())
    return "-".join(out)


def primary_subtag(tag: str) -> str:
    return re.split(r"[-_]", tag, maxsplit=1)[0].lower()


def pick_language(available: Sequence[str], wanted: str | None) -> int:
    """Index in ``available`` (a template's own language first, then its translations) of
    the version for a reader of ``wanted``: the exact tag, then its primary subtag
    ("nl-BE" → "nl"), then another region of the same language ("nl-NL" for "nl-BE"),
    else the template's own language (index 0)."""
    tag = normalize_language(wanted)
    if tag is None or not available:
        return 0
    lowered = [a.lower() for a in available]
    if tag.lower() in lowered:
        return lowered.index(tag.lower())
    primary = primary_subtag(tag)
    if primary in lowered:
        return lowered.index(primary)
    for index, candidate in enumerate(lowered):
        if primary_subtag(candidate) == primary:
            return index
    return 0
