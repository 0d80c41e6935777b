"""Pure-Python caption tokenizer that reproduces pycocoevalcap's ``PTBTokenizer``.

pycocoevalcap tokenizes captions by running the Stanford PTBTokenizer of CoreNLP 3.4.1
(``java -cp stanford-corenlp-3.4.1.jar edu.stanford.nlp.process.PTBTokenizer -preserveLines
-lowerCase``) over all captions joined by newlines, then drops the tokens in :data:`PUNCTUATION`.
This module re-implements that lexer (Penn Treebank 3 conventions) in Python, so that scores
computed where Java is absent use the same tokens:

>>> tokenize("A dog's ball (red), don't U.S. $5 3.5 well-known...")
['a', 'dog', "'s", 'ball', '-lrb-', 'red', '-rrb-', 'do', "n't", 'u.s.', '$', '5', '3.5', 'well-known']

Fine points reproduced from the Java tokenizer (and checked against it by the test suite):

* contractions are split (``don't`` -> ``do n't``, ``cannot`` -> ``can not``, ``gonna`` ->
  ``gon na``), possessives too (``dog's`` -> ``dog 's``, ``dogs'`` -> ``dogs '``);
* hyphenated words, numbers (``3.5``, ``1,000``, ``11:59``, ``1/2``) and acronyms (``U.S.``,
  ``T.V.``) stay whole; ``$5`` -> ``$ 5``; ``£`` -> ``#``, ``€`` -> ``$``, ``½`` -> ``1/2``;
* brackets become ``-lrb-`` ``-rrb-`` ``-lsb-`` ... and, because the Java side lower-cases
  *after* escaping, they are **not** removed by pycocoevalcap's punctuation filter (which lists
  the upper-case ``-LRB-``) -- we keep them too;
* quotes become ````` / ``''`` / ````` / ``'`` and are removed; unicode dashes become ``--``;
* characters the lexer does not know (emoji, control characters) are deleted;
* the tokenization of a caption's last token can depend on the start of the *next* caption
  (e.g. ``... vitamin C.`` followed by a caption starting with ``A`` splits ``c .``), because
  pycocoevalcap tokenizes one stream: :func:`tokenize_lines` reproduces that exactly.

Known, deliberate limits: letters are Python's ``str.isalpha`` (the Java tables predate recent
Unicode versions, so a few hundred newly encoded letters of rare scripts differ), and the rarely
used SGML, URL, e-mail and phone-number rules follow CoreNLP's grammar of that era only
approximately.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

# The tokens pycocoevalcap's PTBTokenizer drops after tokenising (its PUNCTUATIONS list).
PUNCTUATION = frozenset({"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!",
                         ",", ":", "-", "--", "...", ";"})

#: Characters that end a line for the Java lexer (besides ``\n``); pycocoevalcap only replaces
#: ``\n`` inside captions, so any of these silently shifts later captions onto other images.
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

_NEWLINE = object()  # marker token for a line break in the lexed stream


# --------------------------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------------------------

def _ranges_class(predicate: Callable[[str], bool], extra: str = "") -> str:
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
_LETTER_EXTRA = ("\u00AD\u0237-\u024F\u02C2-\u02C5\u02D2-\u02DF\u02E5-\u02FF\u0300-\u036F"
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
_MISC_SYMBOL = ("\u0024-\u0027\u002A-\u002C\u003A-\u003E\\\\\u005E\u0060\u007C\u007E\u00A1"
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
class _Rule:
    """One lexer rule: a regex ``(main)(?:trailing context)`` and an action on ``main``.

    As in JFlex, the rule that matches the longest text *including* its trailing context wins
    (ties go to the earlier rule); only ``main`` becomes the token.

    ``action(text)`` returns ``(token or None, consumed)``: the token to emit (``None`` to emit
    nothing) and how many characters of ``text`` to consume (the rest is pushed back).
    """

    name: str
    regex: "re.Pattern[str]"
    action: Callable[[str], tuple]


def _emit(text: str) -> tuple:
    return text, len(text)


def _emit_as(value: str) -> Callable[[str], tuple]:
    return lambda text: (value, len(text))


def _skip(text: str) -> tuple:
    return None, len(text)


def _pushback(n: int) -> Callable[[str], tuple]:
    return lambda text: (text[:-n], len(text) - n)


def _newline(text: str) -> tuple:
    return _NEWLINE, len(text)


def _remove_soft_hyphens(text: str) -> tuple:
    out = text.replace("\u00AD", "")
    return (out if out else "-"), len(text)


def _acronym(text: str) -> tuple:
    """processAcronym: "I." -> "I" then "."; "U.S." -> "U.S." then "." again."""
    if len(text) == 2:
        return text[0], 1
    return text, len(text) - 1


def _abbrev_dup(text: str) -> tuple:
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


def _quotes(probably_left: bool) -> Callable[[str], tuple]:
    return lambda text: (_latex_quotes(text, probably_left), len(text))


def _currency(text: str) -> tuple:
    mapping = {"\u00A2": "cents", "\u00A3": "#", "\u00A4": "$", "\u0080": "$", "\u20A0": "$",
               "\u20AC": "$"}
    return mapping.get(text, text), len(text)


def _fraction2(text: str) -> tuple:
    mapping = {"\u00BC": "1/4", "\u00BD": "1/2", "\u00BE": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
    return mapping.get(text, text), len(text)


def _nbsp(text: str) -> tuple:
    return text.replace(" ", "\u00A0"), len(text)


def _phone(text: str) -> tuple:
    out = text.replace(" ", "\u00A0").replace("(", "-LRB-").replace(")", "-RRB-")
    return out, len(text)


def _smiley(text: str) -> tuple:
    return text.replace("(", "-LRB-").replace(")", "-RRB-"), len(text)


def _hyphens(text: str) -> tuple:
    if 3 <= len(text) <= 4:
        return "--", len(text)
    return text, len(text)


def _amp(text: str) -> tuple:
    return text.replace("&amp;", "&"), len(text)


def _sgml(text: str) -> tuple:
    return re.sub("[ \r\n]", "\u00A0", text), len(text)


class _PTBLexer:
    """A longest-match lexer in the style of JFlex with the PTBLexer (CoreNLP 3.4.1) rules."""

    def __init__(self) -> None:
        letter_cls = _ranges_class(str.isalpha, _LETTER_EXTRA)  # [:letter:] and CoreNLP's extras
        alpha_cls = _ranges_class(str.isalpha)                   # \p{Alpha}
        letter = "[" + letter_cls + "]"
        splet = "&[aeiouAEIOU](?:acute|grave|uml);"
        L = "(?:" + letter + "|" + splet + ")"            # [:letter:] / {LETTER}
        D = r"\d"                                           # {DIGIT}
        AN = "[" + alpha_cls + r"\d]"                        # [\p{Alpha}\p{Digit}]
        upper = "[" + _ranges_class(str.isupper) + "]"     # [:uppercase:]
        space = "[ \t\u00A0\u2000-\u200A\u3000]"
        newline = "(?:\r\n|[\r\n\u2028\u2029\x0b\x0c])"
        spacenl = "(?:" + space + "|" + newline + ")"
        not_spacenl1 = "[^ \t\u00A0\u2000-\u200A\u3000\r\n\u2028\u2029\x0b\x0c\x85]"
        apos = "(?:['\u0092\u2019]|&apos;)"
        apos_etc = "(?:" + apos + "|[`\u0091\u2018\u201B])"
        sgml = (r"<(?:[!?][A-Za-z\-][^>\r\n]*|[A-Za-z][A-Za-z0-9_:.\-]*(?:[ ]+(?:[A-Za-z]"
                r"[A-Za-z0-9_:.\-]*[ ]*=[ ]*(?:'[^']*'|\"[^\"]*\"|[A-Za-z][A-Za-z0-9_:.\-]*)|"
                r"[A-Za-z][A-Za-z0-9_:.\-]*))*[ ]*/?|/[A-Za-z][A-Za-z0-9_:.\-]*)[ ]*>")
        sentend = spacenl + "(?:" + spacenl + "|" + upper + "|" + sgml + ")"
        word = L + "(?:" + L + "|" + D + ")*(?:[.!?]" + L + "(?:" + L + "|" + D + ")*)*"
        redaux = apos + "(?:[msdMSD]|[rR][eE]|[vV][eE]|[lL][lL])"
        sword = "[" + letter_cls + "\u00AD]*[A-MO-Za-mo-z]\u00AD*"
        sredaux = "[nN]" + apos_etc + "[tT]"
        num = (D + "+(?:[.:,\u00AD\u066B\u066C]" + D + "+)*|" + D + "*(?:[.:,\u00AD\u066B\u066C]"
               + D + "+)+")
        number = r"[\-+]?(?:" + num + ")"
        hyphen = "[-_\u058A\u2010\u2011]"
        thing_pre = "(?:[dDoOlL]" + apos_etc + AN + ")?"
        thing = thing_pre + AN + "+(?:" + hyphen + thing_pre + AN + "+)*"
        acro = r"[A-Za-z](?:\.[A-Za-z])*"
        acro_special = r"(?i:(?:Canada|Sino|Korean|EU|Japan|non)-U\.S|U\.S\.-(?:U\.K|U\.S\.S\.R))"
        abmonth = "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
        abdays = "Mon|Tue|Tues|Wed|Thu|Thurs|Fri"
        abstate = ("(?i:Ala|Ariz)|A(?i:z)|A(?i:rk)|(?i:Calif|Colo|Conn|Ct|Dak)|D(?i:el)|"
                   "(?i:Fla|Ga)|I(?i:ll)|(?i:Ind|Kans?|Ky)|L(?i:a)|M(?i:ass)|(?i:Md|Mich|Minn)|"
                   "M(?i:iss)|(?i:Mo|Mont|Neb|Nev|Okla)|O(?i:re)|P(?i:a)|(?i:Penn|Tenn)|T(?i:ex)|"
                   "(?i:Va|Vt)|W(?i:ash)|(?i:Wisc?|Wyo)")
        abcomp = "Inc|Cos?|Corp|Pp?t[ye]s?|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys"
        abnum = "tel|est|ext|sq"
        abptit = r"Jr|Sr|Bros|(?:Ed|Ph)\.D|Blvd|Rd|Esq"
        abbrev1 = ("(?:(?i:" + abmonth + "|" + abdays + ")|" + abstate + "|(?i:" + abcomp + "|"
                   + abnum + "|" + abptit + r"|etc|al|seq|Bldg))\.")
        abtitle = ("(?i:Mr|Mrs|Ms)|M(?i:iss)|(?i:Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|"
                   "Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|"
                   "Spc|Supts?|Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens|Insp|Mlle|Mme|Msgr|Sfc)")
        abcomp2 = "Invt|Elec|Natl|M[ft]g|Dept"
        abbrev4 = ("(?:" + abtitle + r"|(?i:vs|Alex|Wm|Jos|Cie|a\.k\.a|cf|TREAS|Ph)|v|"
                   + acro_special + "|" + acro + "|(?i:" + abcomp2 + "))")
        acronym_ctx_words = (
            "A(?i:bout|ccording|dditionally|fter|n|s|t)|A|B(?i:ut)|D(?i:id|uring)|E(?i:arlier)|"
            "H(?i:e|er|ere|ow|owever)|I(?i:f|n|t)|L(?i:ast)|M(?i:any|ore|r\\.|s\\.)|N(?i:ow)|"
            "O(?i:nce|ne|ther|ur)|S(?i:he|ince|o|ome|uch)|"
            "T(?i:hat|he|heir|hen|here|hese|hey|his)|W(?i:e|hen|hile|hat|ho|hy)|Y(?i:et|ou)")
        frac = "(?:" + D + "{1,4}[- \u00A0])?" + D + "{1,4}(?:\\\\?/|\u2044)" + D + "{1,4}"
        phone = (r"(?:\([0-9]{2,3}\)[ \u00A0]?|(?:\+\+?)?(?:[0-9]{2,4}[\- \u00A0])?[0-9]{2,4}"
                 r"[\- \u00A0])[0-9]{3,4}[\- \u00A0]?[0-9]{3,5}|(?:(?:\+\+?)?[0-9]{2,4}\.)?"
                 r"[0-9]{2,4}\.[0-9]{3,4}\.[0-9]{3,5}")
        quotes = (apos + "|[`\u2018\u2019\u201B\u201C\u201D\u0091-\u0094\u2039\u203A\u00AB\u00BB]"
                  "{1,2}")
        quotes_left = ("'|[`\u2018\u201B\u201C\u201D\u0091\u0093\u0094\u2039\u203A"
                       "\u00AB\u00BB]{1,2}")
        dblquot = "\"|(?i:&quot;)"
        insentp = "[,;:\u3001]"
        filename_ext = ("bat|bmp|bz2|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|"
                        "jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip")
        thinga = "[A-Z]+(?:(?:[+&]|&amp;)[A-Z]+)+"
        hthing = (r"[A-Za-z0-9][A-Za-z0-9.,\u00AD]*(?:-(?:[A-Za-z](?:\.[A-Za-z])+\.|"
                  r"[A-Za-z0-9\u00AD]+))+")
        email = (r"(?:&lt;|<)?[a-zA-Z0-9][^ \t\n\f\r\"<>|()\u00A0{}]*@(?:[^ \t\n\f\r\"<>|(){}."
                 r"\u00A0]+\.)*[^ \t\n\f\r\"<>|(){}.\u00A0]+(?:&gt;|>)?")
        fullurl = r"(?i:https?)://[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-]"
        likelyurl = (r"(?:(?i:www)\.(?:[^ \t\n\f\r\"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}|"
                     r"(?:[^ \t\n\f\r\"`'<>|.!?(){},\-_$]+\.)+(?i:com|net|org|edu))"
                     r"(?:/[^ \t\n\f\r\"<>|()]+[^ \t\n\f\r\"<>|.!?(){},-])?")
        likelyurl = likelyurl.replace(r",\-_$", ",-_$")  # CoreNLP's class has the range ','..'_'

        rules: list[tuple[str, str, Optional[str], Callable[[str], tuple]]] = [
            ("PROG_LANGS", r"(?i:c\+\+|[cf]#)", None, _emit),
            ("ASSIMILATIONS3", "(?i:cannot|'twas)", None, _pushback(3)),
            ("ASSIMILATIONS2", "(?i:'tis|gonna|gotta|lemme|gimme|wanna)", None,
             _pushback(2)),
            ("SGML", sgml, None, _sgml),
            ("SPMDASH", "&(?i:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", None,
             _emit_as("--")),
            ("SPAMP", "(?i:&amp;)", None, _emit_as("&")),
            ("SPPUNC", "&(?i:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", None, _emit),
            ("WORD_REDAUX", word, redaux, _remove_soft_hyphens),
            ("SWORD_SREDAUX", sword, sredaux, _remove_soft_hyphens),
            ("WORD", word, None, _remove_soft_hyphens),
            ("APOWORD_N", apos + "[nN]" + apos + "?", None, _emit),
            ("APOWORD_LDJ", "[lLdDjJ]" + apos, None, _emit),
            ("APOWORD_LIT", "(?i:dunkin|somethin|ol)" + apos, None, _emit),
            ("APOWORD_EM", apos + "(?i:em)", None, _emit),
            ("APOWORD_CAP", "[A-HJ-XZn]" + apos_etc + L + "{2}" + L + "*", None, _emit),
            ("APOWORD_YEARS", apos + "[2-9]0(?i:s)", None, _emit),
            ("APOWORD_TILL", apos + "(?i:till?)", None, _emit),
            ("APOWORD_VOWEL", L + L + "*[aeiouyAEIOUY]" + apos_etc + "[aeiouA-Z]" + L + "*", None,
             _emit),
            ("APOWORD_CAUSE", apos + "(?i:cause)", None, _emit),
            ("APOWORD_MISC", r"(?i:cont'd\.?|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)|O"
             + apos_etc + "(?i:o)", None, _emit),
            ("APOWORD2", "[yY]" + apos, L, _emit),
            ("FULLURL", fullurl, None, _emit),
            ("LIKELYURL", likelyurl, None, _emit),
            ("EMAIL", email, None, _emit),
            ("TWITTER", "@[a-zA-Z_][a-zA-Z_0-9]*|#" + L + "+", None, _emit),
            ("REDAUX_CTX", redaux, "[^A-Za-z]", _quotes(False)),
            ("SREDAUX_CTX", sredaux, "[^A-Za-z]", _quotes(False)),
            ("DATE", D + "{1,2}[\\-/]" + D + "{1,2}[\\-/]" + D + "{2,4}", None, _emit),
            ("NUMBER", number, None, _emit),
            ("FRAC", frac, None, _nbsp),
            ("FRAC2", "[\u00BC\u00BD\u00BE\u2153-\u215E]", None, _fraction2),
            ("TBSPEC", r"-(?i:RRB|LRB|RCB|LCB|RSB|LSB)-|(?i:C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|"
             r"S(?:&|&amp;)Ls)|(?i:Cap)" + apos + "(?i:n)|(?i:c)" + apos + "(?i:est)", None, _amp),
            ("THING3", r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}",
             None, _emit),
            ("DOLSIGN", r"[A-Z]*\$|#", None, _emit),
            ("DOLSIGN2", "[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0"
             "\uFFE1\uFFE5\uFFE6]", None, _currency),
            ("ACRONYM_CTX", "(?:" + acro_special + "|" + acro + r")\.",
             spacenl + "+(?:" + acronym_ctx_words + "|" + sgml + ")" + spacenl,
             _acronym),
            ("ABBREV3", r"(?i:ca|figs?|prop|nos?|art|bldg|pp|op)\.", spacenl + r"?\d", _emit),
            ("PTY", r"(?i:pt[ey]|co)\.", space + "(?i:ltd|lim)", _emit),
            ("ABBREV1_END", abbrev1, sentend, _abbrev_dup),
            ("ABBREV1_MID", abbrev1, "(?s:..)", _emit),
            ("ABBREV1_EOF", abbrev1, None, _abbrev_dup),
            ("ABBREV2", abbrev4 + r"\.", None, _emit),
            ("ABBREV4", abbrev4, space, _emit),
            ("ACRO", "(?:" + acro_special + "|" + acro + ")", spacenl, _emit),
            ("TBSPEC2", apos + "[0-9][0-9]", spacenl, _emit),
            ("FILENAME", AN + r"+\.(?i:" + filename_ext + ")", "(?:" + spacenl + "|[.?!,])",
             _emit),
            ("WORD_DOT", word + r"\.", insentp, _remove_soft_hyphens),
            ("PHONE", phone, None, _phone),
            ("DBLQUOT_LEFT", dblquot, "[" + alpha_cls + r"\d$]",
             _quotes(True)),
            ("DBLQUOT", dblquot + "|''", None, _quotes(False)),
            ("DEL", "\x7f", None, _skip),
            ("LESSTHAN", "<|(?i:&lt;)", None, _emit_as("<")),
            ("GREATERTHAN", ">|(?i:&gt;)", None, _emit_as(">")),
            ("SMILEY", "[<>]?[:;=][\\-o\\*']?[()DPdpO\\\\{@|\\[\\]]",
             "[^" + alpha_cls + r"\d]", _smiley),
            ("ASIANSMILEY", r"[\^x=~<>]\.\[\^x=~<>]|[\-\^x=~<>']_[\-\^x=~<>']|"
             r"\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)|\([\^x=~<>']-[\^x=~<>'`]\)", None, _smiley),
            ("LCB", r"\{", None, _emit_as("-LCB-")),
            ("RCB", r"\}", None, _emit_as("-RCB-")),
            ("LSB", r"\[", None, _emit_as("-LSB-")),
            ("RSB", r"\]", None, _emit_as("-RSB-")),
            ("LRB", r"\(", None, _emit_as("-LRB-")),
            ("RRB", r"\)", None, _emit_as("-RRB-")),
            ("HYPHENS", r"-+", None, _hyphens),
            ("LDOTS", "\\.{3,5}|[\u0085\u2026]|\\.[ \u00A0](?:\\.[ \u00A0]){1,3}\\.", None,
             _emit_as("...")),
            ("FNMARKS", "@+|#+|_+", None, _emit),
            ("ASTS", r"\*+|(?:\\\*){1,3}", None, _emit),
            ("INSENTP", insentp, None, _emit),
            ("QMARKS", "[?!]+", None, _emit),
            ("PERIOD", "[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]", None,
             _emit),
            ("SLASH", "/", None, _emit),
            ("HTHING", hthing, None, _remove_soft_hyphens),
            ("HTHING_DOT", hthing + r"\.", insentp, _remove_soft_hyphens),
            ("THING", thing, None, _quotes(False)),
            ("THING_DOT", thing + r"\.", insentp, _quotes(False)),
            ("THINGA_DOT", thinga + r"\.", insentp, _amp),
            ("THINGA", thinga, None, _amp),
            ("QUOTES_LEFT", "(?:" + quotes_left + ")", L + not_spacenl1, _quotes(True)),
            ("QUOTES", "(?:" + quotes + ")", None, _quotes(False)),
            ("REDAUX", redaux, None, _quotes(False)),
            ("SREDAUX", sredaux, None, _quotes(False)),
            ("FAKEDUCKFEET", "<<|>>", None, _emit),
            ("MISCSYMBOL", "[" + _MISC_SYMBOL + "]", None, _emit),
            ("SPACES", "\x00|" + space + "+|[\u200B\u200E-\u200F\uFEFF]", None, _skip),
            ("NEWLINE", newline, None, _newline),
            ("NBSP", "(?i:&nbsp;)", None, _skip),
        ]
        compiled = []
        for name, main, trail, action in rules:
            if trail is None:
                rx = re.compile("(" + main + ")")
            else:
                rx = re.compile("(" + main + ")(?:" + trail + ")")
            compiled.append(_Rule(name, rx, action))
        self.rules = tuple(compiled)
        # Fast path: a plain ASCII word followed by a space or the end of a line.
        self._plain = re.compile(r"[A-Za-z]+(?=[ \n]|\Z)")
        self._plain_exceptions = re.compile(r"(?i:cannot|gonna|gotta|lemme|gimme|wanna)\Z")

    def lex(self, text: str) -> list[list[str]]:
        """Tokens (after PTB normalisation, before lower-casing) per line of ``text``."""
        lines: list[list[str]] = [[]]
        pos = 0
        n = len(text)
        rules = self.rules
        plain = self._plain
        while pos < n:
            ch = text[pos]
            if ch == " ":
                pos += 1
                continue
            m = plain.match(text, pos)
            if m and not self._plain_exceptions.match(m.group()):
                lines[-1].append(m.group())
                pos = m.end()
                continue
            best_len = 0
            best = None
            for rule in rules:
                m = rule.regex.match(text, pos)
                if m is not None:
                    total = m.end() - pos
                    if total > best_len:
                        best_len = total
                        best = (rule, m)
            if best is None:  # untokenizable character: deleted (CoreNLP's "firstDelete")
                pos += 1
                continue
            rule, m = best
            token, consumed = rule.action(m.group(1))
            pos += max(consumed, 1)
            if token is _NEWLINE:
                lines.append([])
            elif token is not None:
                lines[-1].append(token)
        return lines


@functools.lru_cache(maxsize=1)
def _lexer() -> _PTBLexer:
    return _PTBLexer()


def normalize_caption(text: str) -> str:
    """Collapse all whitespace, including line and paragraph separators, to single spaces.

    Applied to every caption before tokenizing (Java or Python), so one caption is always one
    line: ``\\r``, form feed, vertical tab, U+0085, U+2028/2029 would otherwise end the line in
    the Java tokenizer and shift every later caption onto the wrong image.
    """
    return " ".join(text.split())


def ptb_tokens_lines(captions: Sequence[str]) -> list[list[str]]:
    """Raw lower-cased PTB tokens (punctuation kept) of each caption, lexed as one stream.

    Exactly what ``java ... PTBTokenizer -preserveLines -lowerCase`` prints for
    ``"\\n".join(captions)`` (captions are normalised first with :func:`normalize_caption`).
    """
    if not captions:
        return []
    stream = "\n".join(normalize_caption(c) for c in captions)
    lines = _lexer().lex(stream)
    if len(lines) != len(captions):  # pragma: no cover - normalisation guarantees this
        raise RuntimeError(f"tokenizer produced {len(lines)} lines for {len(captions)} captions")
    # Java lower-cases with Locale.ENGLISH, which agrees with str.lower for these tokens.
    return [[tok.lower() for tok in line] for line in lines]


def tokenize_lines(captions: Sequence[str]) -> list[list[str]]:
    """Tokens of each caption, as pycocoevalcap's PTBTokenizer gives them for the whole list.

    The captions are tokenized as one newline-separated stream (like the Java tokenizer), so
    the rare dependence of a caption's last token on the next caption is reproduced.
    """
    return [[t for t in line if t not in PUNCTUATION] for line in ptb_tokens_lines(captions)]


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` with punctuation removed (one caption)."""
    return tokenize_lines([text])[0]
