"""The PTBLexer's character classes and rule actions (CoreNLP 3.4.1), for :mod:`.ptb_tokenizer`.

Each action takes the matched text and returns ``(token or None, characters consumed)``; ``NEWLINE``
marks a line break in the lexed stream.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

NEWLINE = object()  # marker token for a line break in the lexed stream


# --------------------------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------------------------

def ranges_class(predicate: Callable[[str], bool], extra: str = "") -> str:
    """A regex character class (without brackets) of all BMP characters satisfying predicate."""
    parts: list[str] = []
    start = None
    prev = None
    for code in range(0x10000):
        ok = not (0xD800 <= code < 0xE000) and predicate(chr(code))
        if ok and start is None:
            start = code
        if not ok and start is not None:
            parts.append(_range_str(start, prev))
            start = None
        prev = code
    if start is not None:
        parts.append(_range_str(start, 0xFFFF))
    return "".join(parts) + extra


def _range_str(lo: int, hi: int) -> str:
    if lo == hi:
        return "\\u%04X" % lo
    return "\\u%04X-\\u%04X" % (lo, hi)


# Non-letters that CoreNLP's LETTER macro adds (combining marks, modifier letters, ...).
LETTER_EXTRA = ("\u00AD\u0237-\u024F\u02C2-\u02C5\u02D2-\u02DF\u02E5-\u02FF\u0300-\u036F"
                 "\u0370-\u037D\u0384\u0385\u03CF\u03F6\u03FC-\u03FF\u0483-\u0487\u04CF"
                 "\u04F6-\u04FF\u0510-\u0525\u055A-\u055F\u0591-\u05BD\u05BF\u05C1\u05C2"
                 "\u05C4\u05C5\u05C7\u0615-\u061A\u063B-\u063F\u064B-\u065E\u0670\u06D6-\u06EF"
                 "\u06FA-\u06FF\u070F\u0711\u0730-\u074F\u0750-\u077F\u07A6-\u07B1\u07CA-\u07F5"
                 "\u07FA\u0900-\u0903\u093C\u093E-\u094E\u0951-\u0955\u0962-\u0963\u0981-\u0983"
                 "\u09BC-\u09C4\u09C7\u09C8\u09CB-\u09CD\u09D7\u09E2\u09E3\u0A01-\u0A03\u0A3C"
                 "\u0A3E-\u0A4F\u0A81-\u0A83\u0ABC-\u0ACF\u0B82\u0BBE-\u0BC2\u0BC6-\u0BC8"
                 "\u0BCA-\u0BCD\u0C01-\u0C03\u0C3E-\u0C56\u0D3E-\u0D44\u0D46-\u0D48\u0E30-\u0E3A"
                 "\u0E47-\u0E4E\u0EB1-\u0EBC\u0EC8-\u0ECD")

# Stand-alone symbols (one token each), as measured on the 3.4.1 lexer.
MISC_SYMBOL = ("\u0024-\u0027\u002A-\u002C\u003A-\u003E\\\\\u005E\u0060\u007C\u007E\u00A1"
                "\u00A5-\u00A9\u00AC\u00AE-\u00B4\u00B6-\u00B9\u00BF\u00D7\u00F7\u037E\u0387"
                "\u0589\u05BE\u05C0\u05C3\u05C6\u05F3-\u05F4\u0600-\u0603\u0606-\u060C\u0614"
                "\u061B\u061E-\u061F\u066A\u066D\u06D4\u0700-\u070D\u07F6-\u07F8\u0964-\u0965"
                "\u0E3F\u0E4F\u1FBD\u2016-\u2017\u201A\u201E-\u2023\u2030-\u2038\u203B"
                "\u203E-\u2042\u2044\u2070\u2074-\u207E\u2080-\u208E\u20A4\u2100-\u2101"
                "\u2103-\u2106\u2108-\u2109\u2114\u2116-\u2118\u211E-\u2123\u2125\u2127\u2129"
                "\u212E\u213A-\u213B\u2140-\u2144\u214A-\u214D\u214F\u2155-\u215E\u2190-\u2BFF"
                "\u3001-\u3002\u3012\u30FB\uFF01-\uFF0F\uFF1A-\uFF20\uFF3B-\uFF40\uFF5B-\uFF65"
                "\uFFE0-\uFFE1\uFFE5-\uFFE6")


@dataclass(frozen=True)
class Rule:
    """One lexer rule: a regex ``(main)(?:trailing context)`` and an action on ``main``.

    As in JFlex, the rule that matches the longest text *including* its trailing context wins
    (ties go to the earlier rule); only ``main`` becomes the token.

    ``action(text)`` returns ``(token or None, consumed)``: the token to emit (``None`` to emit
    nothing) and how many characters of ``text`` to consume (the rest is pushed back).
    """

    name: str
    regex: "re.Pattern[str]"
    action: Callable[[str], tuple]


def emit(text: str) -> tuple:
    return text, len(text)


def emit_as(value: str) -> Callable[[str], tuple]:
    return lambda text: (value, len(text))


def skip(text: str) -> tuple:
    return None, len(text)


def pushback(n: int) -> Callable[[str], tuple]:
    return lambda text: (text[:-n], len(text) - n)


def newline(text: str) -> tuple:
    return NEWLINE, len(text)


def remove_soft_hyphens(text: str) -> tuple:
    out = text.replace("\u00AD", "")
    return (out if out else "-"), len(text)


def acronym(text: str) -> tuple:
    """processAcronym: "I." -> "I" then "."; "U.S." -> "U.S." then "." again."""
    if len(text) == 2:
        return text[0], 1
    return text, len(text) - 1


def abbrev_dup(text: str) -> tuple:
    """processAbbrev1 (sentence end): return the word with its period, then the period again."""
    return text, len(text) - 1


_SINGLE_QUOTE = re.compile("&apos;|'")
_DOUBLE_QUOTE = re.compile("\"|''|'`|`'|&quot;")
_LEFT_SINGLE = re.compile("[\u0082\u008B\u0091\u2018\u201A\u201B\u2039]")
_RIGHT_SINGLE = re.compile("[\u0092\u009B\u00B4\u2019\u203A]")
_LEFT_DOUBLE = re.compile("[\u0084\u0093\u201C\u201E\u00AB]|[\u0091\u2018]'")
_RIGHT_DOUBLE = re.compile("[\u0094\u201D\u00BB]|[\u0092\u2019]'")


def _latex_quotes(text: str, probably_left: bool) -> str:
    if probably_left:
        text = _SINGLE_QUOTE.sub("`", text)
        text = _DOUBLE_QUOTE.sub("``", text)
    else:
        text = _SINGLE_QUOTE.sub("'", text)
        text = _DOUBLE_QUOTE.sub("''", text)
    text = _LEFT_SINGLE.sub("`", text)
    text = _RIGHT_SINGLE.sub("'", text)
    text = _LEFT_DOUBLE.sub("``", text)
    text = _RIGHT_DOUBLE.sub("''", text)
    return text


def quotes(probably_left: bool) -> Callable[[str], tuple]:
    return lambda text: (_latex_quotes(text, probably_left), len(text))


def currency(text: str) -> tuple:
    mapping = {"\u00A2": "cents", "\u00A3": "#", "\u00A4": "$", "\u0080": "$", "\u20A0": "$",
               "\u20AC": "$"}
    return mapping.get(text, text), len(text)


def fraction2(text: str) -> tuple:
    mapping = {"\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
    return mapping.get(text, text), len(text)


def nbsp(text: str) -> tuple:
    return text.replace(" ", "\u00A0"), len(text)


def phone(text: str) -> tuple:
    out = text.replace(" ", "\u00A0").replace("(", "-LRB-").replace(")", "-RRB-")
    return out, len(text)


def smiley(text: str) -> tuple:
    return text.replace("(", "-LRB-").replace(")", "-RRB-"), len(text)


def hyphens(text: str) -> tuple:
    if 3 <= len(text) <= 4:
        return "--", len(text)
    return text, len(text)


def amp(text: str) -> tuple:
    return text.replace("&amp;", "&"), len(text)


def sgml(text: str) -> tuple:
    return re.sub("[ \r\n]", "\u00A0", text), len(text)

