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
from typing import Callable, Optional, Sequence

from . import ptb_rules

# The tokens pycocoevalcap's PTBTokenizer drops after tokenising (its PUNCTUATIONS list).
PUNCTUATION = frozenset({"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!",
                         ",", ":", "-", "--", "...", ";"})

#: Characters that end a line for the Java lexer (besides ``\n``); pycocoevalcap only replaces
#: ``\n`` inside captions, so any of these silently shifts later captions onto other images.
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class _PTBLexer:
    """A longest-match lexer in the style of JFlex with the PTBLexer (CoreNLP 3.4.1) ptb_rules."""

    def __init__(self) -> None:
        letter_cls = ptb_rules.ranges_class(str.isalpha, ptb_rules.LETTER_EXTRA)  # [:letter:] and CoreNLP's extras
        alpha_cls = ptb_rules.ranges_class(str.isalpha)                   # \p{Alpha}
        letter = "[" + letter_cls + "]"
        splet = "&[aeiouAEIOU](?:acute|grave|uml);"
        L = "(?:" + letter + "|" + splet + ")"            # [:letter:] / {LETTER}
        D = r"\d"                                           # {DIGIT}
        AN = "[" + alpha_cls + r"\d]"                        # [\p{Alpha}\p{Digit}]
        upper = "[" + ptb_rules.ranges_class(str.isupper) + "]"     # [:uppercase:]
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
            ("PROG_LANGS", r"(?i:c\+\+|[cf]#)", None, ptb_rules.emit),
            ("ASSIMILATIONS3", "(?i:cannot|'twas)", None, ptb_rules.pushback(3)),
            ("ASSIMILATIONS2", "(?i:'tis|gonna|gotta|lemme|gimme|wanna)", None,
             ptb_rules.pushback(2)),
            ("SGML", sgml, None, ptb_rules.sgml),
            ("SPMDASH", "&(?i:MD|mdash|ndash);|[\u0096\u0097\u2013\u2014\u2015]", None,
             ptb_rules.emit_as("--")),
            ("SPAMP", "(?i:&amp;)", None, ptb_rules.emit_as("&")),
            ("SPPUNC", "&(?i:HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);", None, ptb_rules.emit),
            ("WORD_REDAUX", word, redaux, ptb_rules.remove_soft_hyphens),
            ("SWORD_SREDAUX", sword, sredaux, ptb_rules.remove_soft_hyphens),
            ("WORD", word, None, ptb_rules.remove_soft_hyphens),
            ("APOWORD_N", apos + "[nN]" + apos + "?", None, ptb_rules.emit),
            ("APOWORD_LDJ", "[lLdDjJ]" + apos, None, ptb_rules.emit),
            ("APOWORD_LIT", "(?i:dunkin|somethin|ol)" + apos, None, ptb_rules.emit),
            ("APOWORD_EM", apos + "(?i:em)", None, ptb_rules.emit),
            ("APOWORD_CAP", "[A-HJ-XZn]" + apos_etc + L + "{2}" + L + "*", None, ptb_rules.emit),
            ("APOWORD_YEARS", apos + "[2-9]0(?i:s)", None, ptb_rules.emit),
            ("APOWORD_TILL", apos + "(?i:till?)", None, ptb_rules.emit),
            ("APOWORD_VOWEL", L + L + "*[aeiouyAEIOUY]" + apos_etc + "[aeiouA-Z]" + L + "*", None,
             ptb_rules.emit),
            ("APOWORD_CAUSE", apos + "(?i:cause)", None, ptb_rules.emit),
            ("APOWORD_MISC", r"(?i:cont'd\.?|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l)|O"
             + apos_etc + "(?i:o)", None, ptb_rules.emit),
            ("APOWORD2", "[yY]" + apos, L, ptb_rules.emit),
            ("FULLURL", fullurl, None, ptb_rules.emit),
            ("LIKELYURL", likelyurl, None, ptb_rules.emit),
            ("EMAIL", email, None, ptb_rules.emit),
            ("TWITTER", "@[a-zA-Z_][a-zA-Z_0-9]*|#" + L + "+", None, ptb_rules.emit),
            ("REDAUX_CTX", redaux, "[^A-Za-z]", ptb_rules.quotes(False)),
            ("SREDAUX_CTX", sredaux, "[^A-Za-z]", ptb_rules.quotes(False)),
            ("DATE", D + "{1,2}[\\-/]" + D + "{1,2}[\\-/]" + D + "{2,4}", None, ptb_rules.emit),
            ("NUMBER", number, None, ptb_rules.emit),
            ("FRAC", frac, None, ptb_rules.nbsp),
            ("FRAC2", "[\u00BC\u00BD\u00BE\u2153-\u215E]", None, ptb_rules.fraction2),
            ("TBSPEC", r"-(?i:RRB|LRB|RCB|LCB|RSB|LSB)-|(?i:C\.D\.s|pro-|anti-|S(?:&|&amp;)P-500|"
             r"S(?:&|&amp;)Ls)|(?i:Cap)" + apos + "(?i:n)|(?i:c)" + apos + "(?i:est)", None, ptb_rules.amp),
            ("THING3", r"[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}",
             None, ptb_rules.emit),
            ("DOLSIGN", r"[A-Z]*\$|#", None, ptb_rules.emit),
            ("DOLSIGN2", "[\u00A2\u00A3\u00A4\u00A5\u0080\u20A0\u20AC\u060B\u0E3F\u20A4\uFFE0"
             "\uFFE1\uFFE5\uFFE6]", None, ptb_rules.currency),
            ("ACRONYM_CTX", "(?:" + acro_special + "|" + acro + r")\.",
             spacenl + "+(?:" + acronym_ctx_words + "|" + sgml + ")" + spacenl,
             ptb_rules.acronym),
            ("ABBREV3", r"(?i:ca|figs?|prop|nos?|art|bldg|pp|op)\.", spacenl + r"?\d", ptb_rules.emit),
            ("PTY", r"(?i:pt[ey]|co)\.", space + "(?i:ltd|lim)", ptb_rules.emit),
            ("ABBREV1_END", abbrev1, sentend, ptb_rules.abbrev_dup),
            ("ABBREV1_MID", abbrev1, "(?s:..)", ptb_rules.emit),
            ("ABBREV1_EOF", abbrev1, None, ptb_rules.abbrev_dup),
            ("ABBREV2", abbrev4 + r"\.", None, ptb_rules.emit),
            ("ABBREV4", abbrev4, space, ptb_rules.emit),
            ("ACRO", "(?:" + acro_special + "|" + acro + ")", spacenl, ptb_rules.emit),
            ("TBSPEC2", apos + "[0-9][0-9]", spacenl, ptb_rules.emit),
            ("FILENAME", AN + r"+\.(?i:" + filename_ext + ")", "(?:" + spacenl + "|[.?!,])",
             ptb_rules.emit),
            ("WORD_DOT", word + r"\.", insentp, ptb_rules.remove_soft_hyphens),
            ("PHONE", phone, None, ptb_rules.phone),
            ("DBLQUOT_LEFT", dblquot, "[" + alpha_cls + r"\d$]",
             ptb_rules.quotes(True)),
            ("DBLQUOT", dblquot + "|''", None, ptb_rules.quotes(False)),
            ("DEL", "\x7f", None, ptb_rules.skip),
            ("LESSTHAN", "<|(?i:&lt;)", None, ptb_rules.emit_as("<")),
            ("GREATERTHAN", ">|(?i:&gt;)", None, ptb_rules.emit_as(">")),
            ("SMILEY", "[<>]?[:;=][\\-o\\*']?[()DPdpO\\\\{@|\\[\\]]",
             "[^" + alpha_cls + r"\d]", ptb_rules.smiley),
            ("ASIANSMILEY", r"[\^x=~<>]\.\[\^x=~<>]|[\-\^x=~<>']_[\-\^x=~<>']|"
             r"\([\-\^x=~<>'][_.]?[\-\^x=~<>']\)|\([\^x=~<>']-[\^x=~<>'`]\)", None, ptb_rules.smiley),
            ("LCB", r"\{", None, ptb_rules.emit_as("-LCB-")),
            ("RCB", r"\}", None, ptb_rules.emit_as("-RCB-")),
            ("LSB", r"\[", None, ptb_rules.emit_as("-LSB-")),
            ("RSB", r"\]", None, ptb_rules.emit_as("-RSB-")),
            ("LRB", r"\(", None, ptb_rules.emit_as("-LRB-")),
            ("RRB", r"\)", None, ptb_rules.emit_as("-RRB-")),
            ("HYPHENS", r"-+", None, ptb_rules.hyphens),
            ("LDOTS", "\\.{3,5}|[\u0085\u2026]|\\.[ \u00A0](?:\\.[ \u00A0]){1,3}\\.", None,
             ptb_rules.emit_as("...")),
            ("FNMARKS", "@+|#+|_+", None, ptb_rules.emit),
            ("ASTS", r"\*+|(?:\\\*){1,3}", None, ptb_rules.emit),
            ("INSENTP", insentp, None, ptb_rules.emit),
            ("QMARKS", "[?!]+", None, ptb_rules.emit),
            ("PERIOD", "[.\u00A1\u00BF\u037E\u0589\u061F\u06D4\u0700-\u0702\u07FA\u3002]", None,
             ptb_rules.emit),
            ("SLASH", "/", None, ptb_rules.emit),
            ("HTHING", hthing, None, ptb_rules.remove_soft_hyphens),
            ("HTHING_DOT", hthing + r"\.", insentp, ptb_rules.remove_soft_hyphens),
            ("THING", thing, None, ptb_rules.quotes(False)),
            ("THING_DOT", thing + r"\.", insentp, ptb_rules.quotes(False)),
            ("THINGA_DOT", thinga + r"\.", insentp, ptb_rules.amp),
            ("THINGA", thinga, None, ptb_rules.amp),
            ("QUOTES_LEFT", "(?:" + quotes_left + ")", L + not_spacenl1, ptb_rules.quotes(True)),
            ("QUOTES", "(?:" + quotes + ")", None, ptb_rules.quotes(False)),
            ("REDAUX", redaux, None, ptb_rules.quotes(False)),
            ("SREDAUX", sredaux, None, ptb_rules.quotes(False)),
            ("FAKEDUCKFEET", "<<|>>", None, ptb_rules.emit),
            ("MISCSYMBOL", "[" + ptb_rules.MISC_SYMBOL + "]", None, ptb_rules.emit),
            ("SPACES", "\x00|" + space + "+|[\u200B\u200E-\u200F\uFEFF]", None, ptb_rules.skip),
            ("NEWLINE", newline, None, ptb_rules.newline),
            ("NBSP", "(?i:&nbsp;)", None, ptb_rules.skip),
        ]
        compiled = []
        for name, main, trail, action in rules:
            if trail is None:
                rx = re.compile("(" + main + ")")
            else:
                rx = re.compile("(" + main + ")(?:" + trail + ")")
            compiled.append(ptb_rules.Rule(name, rx, action))
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
            if token is ptb_rules.NEWLINE:
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


def tokenize_python(captions: Sequence[str]) -> list:
    """Tokenize captions with this pure-Python PTB tokenizer (one space-separated string each, as
    :func:`show_attend.metrics.java.tokenize_ptb_java` returns them)."""
    return [" ".join(tokens) for tokens in tokenize_lines(list(captions))]
