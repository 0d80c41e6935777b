"""The pure-Python tokenizer reproduces pycocoevalcap's Java PTBTokenizer.

Java-backed comparisons are skipped when ``java`` is not on PATH; the expected values of the
other tests were measured with the Java tokenizer (CoreNLP 3.4.1, as shipped by pycocoevalcap).
"""
from __future__ import annotations

import json
import random
import zipfile

import pytest

from show_attend.metrics.java import java_executable, pycocoevalcap_dir, tokenize_ptb_java
from show_attend.metrics.ptb_tokenizer import (PUNCTUATION, normalize_caption, ptb_tokens_lines, tokenize,
                                   tokenize_lines)

JAVA = java_executable()
needs_java = pytest.mark.skipif(JAVA is None, reason="java not on PATH")

# ~140 varied captions: punctuation, apostrophes, hyphens, numbers, case, unicode quotes, ...
VARIED = [
    "A dog's ball is red.", "Two dogs' bowls sit on the floor.", "I don't know why it can't fly.",
    "A man who won't stop smiling", "She cannot see the cat.", "We're gonna need a bigger boat",
    "They wanna go home, don't they?", "You'll see it's fine; he'd agree.", "I'm here, you've left.",
    "A well-known self-driving car on a two-lane road.", "An x-ray of a 5-year-old's hand",
    "A T-shirt with a U-turn sign", "re-enter the co-op via the non-stop train",
    "The U.S. flag flies over Washington D.C.", "A small T.V. on a desk", "an r.v. parked outside",
    "Prices between $3 and $4.50 per gallon.", "A $5 bill and a 3.5 inch floppy", "10,000 people",
    "The clock reads 11:59.", "A sign: 1/2 off, 3/4 sold", "½ a sandwich and ¼ of a pie",
    "A 1990s car from 1990-2000", "Score 3-4 at the 10-20 mark", "It's 100% cotton", "50 % off",
    "A sign that says \"Please Don't Use\".", "A 'single quoted' word", "“Curly quotes” here",
    "‘Single curly’ quotes", "It’s a dog’s life", "Don’t touch", "«Guillemets» too",
    "A man (in red) holds a sign [blue] {green}", "A sign reading (555) 123-4567",
    "Wait... what?", "Wait…what", "A cat. . . sleeping", "Hmm.... okay", "Really?!", "Stop!!!",
    "A pink post-it-note that states, \"Close the door!!! Thanks.\"", "smile :) and wink ;)",
    "A heart <3 drawn on a window", "a < b > c", "A&W root beer and AT&T phones", "salt & pepper",
    "Q&A session", "S&P-500 chart", "fish 'n' chips", "rock'n'roll band", "O'Neil's pub o'clock",
    "y'all come back", "ma'am at the door", "the '90s style", "in the 90's", "'cause it rains",
    "'til dawn", "'em all", "Dunkin' Donuts sign", "c'mon let's go", "a li'l dog", "ol' man river",
    "A STOP SIGN ON A POLE.", "BICYCLE SIGN ON TALL POLL CLOSE TO APT BLDG.", "mIxEd CaSe TeXt",
    "e.g. a dog, i.e. a pet, etc.", "Mr. Smith and Dr. Jones on St. Patrick's day",
    "A sign for Main St. in the city", "Ave. of the Americas", "Gov. and Sen. at the podium",
    "No. 5 on the door", "fig. 3 shows it", "Co. Ltd. building", "Apple Inc. store",
    "A sheep penn.", "A man jumps over a prop.", "a trio of motorcycles parked next to an r.v.",
    "email me at foo@bar.com now", "visit www.example.com today", "see http://x.com/a?b=c ok",
    "#hashtag and @user", "#1 in the race", "a*b and **bold**", "under_score and __init__",
    "and/or brown/red tub / shower", "black\\white stripes", "A crow\\d of people",
    "— em dash – en dash -- double - single", "a ---- long dash", "café naïve résumé Über",
    "日本 street sign", "Ελληνικά letters", "emoji 😀 face", "20°C outside", "x² plus y²",
    "£5 and €5 and ¥100 and ¢10", "US$5 note", "the 2nd and 3rd and 21st place", "3D movie, 4K TV",
    "The words \"Connect_Anywhere\" cover a photo", "#213 leans into a turn", "a clock at 2:15 PM",
    "a. b. c.", "the letter A.", "vitamin C.", "in the U.S.", "in the U.S. He said",
    "Yahoo! advertisement", "ok!", "E! news", "Three blue-and-white ANA (All Nippon Airways) planes",
    "A room with a flat screen T.V. ", "  leading and trailing spaces  ", "", "...", "a",
    "tab\tseparated\twords", "non\u00a0breaking space", "zero\u200bwidth", "soft\u00adhyphen",
    "A 'quote' at the end'", "'Tis the season", "The end", "He said, 'yes.'", "The ''quoted'' word",
    "``latex quotes''", "It costs $1,000.00!", "A 12\" pizza and a 6' man", "5'10\" tall",
    "1 1/2 cups", "the 12/25/2014 date", "v1.2 release", "file1.jpg and image.png",
    "10:30am and 5pm and 5 p.m.", "-5 degrees and +5 points", "A B C D", "I.", "U.S.A.",
]


def _java_lines(captions):
    # Tokens may hold a no-break space ("1\xa01/2"), so split on " " only, like pycocoevalcap.
    return [[t for t in line.split(" ") if t] for line in tokenize_ptb_java(captions, java=JAVA)]


def test_examples():
    assert tokenize("A dog's ball, red.") == ["a", "dog", "'s", "ball", "red"]
    assert tokenize("I don't know") == ["i", "do", "n't", "know"]
    assert tokenize("cannot, gonna") == ["can", "not", "gon", "na"]
    assert tokenize("A well-known T-shirt") == ["a", "well-known", "t-shirt"]
    assert tokenize("The U.S. costs $5, or 3.5%") == ["the", "u.s.", "costs", "$", "5", "or",
                                                      "3.5", "%"]
    assert tokenize("He said \"hi\" (twice)...") == ["he", "said", "hi", "-lrb-", "twice",
                                                     "-rrb-"]
    assert tokenize("“Curly” ‘quotes’ — dash") == ["curly", "quotes", "dash"]
    assert tokenize("11:59 and 1,000 and ½") == ["11:59", "and", "1,000", "and", "1/2"]
    assert tokenize("") == []
    assert tokenize("...!?") == ["!?"]  # "!?" is not in pycocoevalcap's punctuation list


def test_punctuation_set_is_pycocoevalcaps():
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS

    assert PUNCTUATION == set(PUNCTUATIONS)


def test_brackets_survive_like_in_pycocoevalcap():
    # Java lower-cases "-LRB-" to "-lrb-", which pycocoevalcap's filter (upper case) keeps.
    assert ptb_tokens_lines(["(a) [b] {c}"])[0] == ["-lrb-", "a", "-rrb-", "-lsb-", "b", "-rsb-",
                                                    "-lcb-", "c", "-rcb-"]
    assert tokenize("(a)") == ["-lrb-", "a", "-rrb-"]


def test_next_caption_context_is_reproduced():
    # A final "C." is split when the next line starts with "A" (an acronym-at-sentence-end rule).
    lines = tokenize_lines(["A sign that says vitamin C.", "A cat on a mat."])
    assert lines[0][-1] == "c"
    assert tokenize_lines(["A sign that says vitamin C.", "a cat"])[0][-1] == "c."
    assert tokenize("A sign that says vitamin C.")[-1] == "c."


def test_line_breaks_never_split_a_caption():
    weird = ["a\rb", "c\x0cd", "e\u2028f", "g\u2029h", "i\x0bj", "k\x85l", "m\r\nn", "o\np"]
    lines = tokenize_lines(weird + ["last"])
    assert len(lines) == len(weird) + 1
    assert lines[-1] == ["last"]
    assert all(len(line) == 2 for line in lines[:-1])
    assert normalize_caption(" a\u2028 b\r") == "a b"


@needs_java
def test_matches_java_on_varied_captions():
    expected = _java_lines(VARIED)
    got = tokenize_lines(VARIED)
    mismatches = [(c, e, g) for c, e, g in zip(VARIED, expected, got) if e != g]
    assert not mismatches, mismatches[:5]
    # Each caption alone too (end-of-input context).
    for caption in ("vitamin C.", "in the U.S.", "smile :)", "a. b. c.", "It's", "Co. Ltd."):
        assert tokenize(caption) == _java_lines([caption])[0], caption


@needs_java
def test_matches_java_on_coco_captions():
    """A sample of real COCO 2014 captions, read from the jar pycocoevalcap ships for SPICE."""
    jar = pycocoevalcap_dir() / "spice" / "spice-1.0.jar"
    if not jar.is_file():
        pytest.skip("SPICE jar (with COCO captions) not installed")
    with zipfile.ZipFile(jar) as zf:
        names = [n for n in zf.namelist() if n.endswith("captions_val2014.json")]
        if not names:
            pytest.skip("no COCO captions inside the SPICE jar")
        data = json.loads(zf.read(names[0]))
    captions = [a["caption"] for a in data["annotations"]]
    rng = random.Random(0)
    sample = rng.sample(captions, 3000)
    # Make sure the rarer characters are represented.
    sample += [c for c in captions if any(ch in c for ch in "\"'()$&/\\#:;")][:1000]
    expected = _java_lines(sample)
    got = tokenize_lines(sample)
    mismatches = [(c, e, g) for c, e, g in zip(sample, expected, got) if e != g]
    assert not mismatches, mismatches[:5]


@needs_java
def test_java_wrapper_matches_pycocoevalcaps_ptbtokenizer(tmp_path):
    """Our subprocess call gives what pycocoevalcap's PTBTokenizer gives (when it can run)."""
    import os

    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok_dir = pycocoevalcap_dir() / "tokenizer"
    if not os.access(tok_dir, os.W_OK):
        pytest.skip("pycocoevalcap's PTBTokenizer needs a writable site-packages")
    captions = VARIED[:60]
    theirs = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
    ours = tokenize_ptb_java(captions, java=JAVA)
    assert [theirs[i][0] for i in range(len(captions))] == ours
