"""Flickr30k Entities (Plummer et al., 2015): human boxes for the noun phrases of the captions.

The official release, as users download it, is a folder with one pair of files per image::

    <root>/Sentences/<flickr id>.txt    five captions, phrases marked [/EN#<chain>/<type>[/<type>...] words]
    <root>/Annotations/<flickr id>.xml  PASCAL-VOC-like: the original size; per object one or more
                                        <name> (chain ids) and a <bndbox>, or <nobndbox>/<scene> flags

A chain (coreference chain) is the set of phrases that name the same thing; its region is the union
of all its boxes. Boxes are 1-based inclusive pixel indices of the ORIGINAL photo; here they become
continuous coordinates ``(xmin - 1, ymin - 1, xmax, ymax)`` (the official Python reader's 0-based
``xmin - 1`` .. ``xmax - 1`` inclusive, as a half-open interval), so a box covering the whole photo
is ``(0, 0, width, height)``. ``show_attend.data.boxes`` maps them into the frame the encoder saw.

A phrase is *scorable* (has a region to compare attention with) when its chain has boxes, the chain
is not flagged scene or no-box, it is not ``notvisual`` (chain 0), and it has a type other than
``scene`` (a "vehicles/scene" phrase counts as a vehicle; a plain "scene" phrase is not scored).

Flickr8k is a subset of Flickr30k with the same Flickr ids: ``1000268201_693b08cb0e.jpg`` is
``1000268201`` (:func:`flickr_id`). The Entities captions are the dataset's captions with small
spelling fixes, in another order: :func:`align_captions` pairs them by text, :func:`token_phrases`
maps a dataset caption's tokens (``show_attend.metrics.ptb_tokenizer.tokenize``) to its phrases.
"""
from __future__ import annotations

import difflib
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from ..metrics.ptb_tokenizer import tokenize, tokenize_lines

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), original pixels, half-open
#: The phrase types of the release that have regions, in report order (``scene``/``notvisual`` excluded).
PHRASE_TYPES = ("people", "clothing", "bodyparts", "animals", "vehicles", "instruments", "other")
UNSCORED_TYPES = ("scene", "notvisual")
MIN_CAPTION_SIMILARITY = 0.6  # difflib ratio below which a caption is left unaligned

_PHRASE = re.compile(r"\[/EN#(\d+)((?:/[^\s/\]]+)+)\s+([^\]]*)\]")
_LAYOUT = ("expected a Flickr30k Entities folder holding Sentences/<id>.txt and Annotations/<id>.xml "
           "(the official release's layout)")


class EntitiesError(ValueError):
    """A Flickr30k Entities folder or file that cannot be read; the message names it."""


@dataclass(frozen=True)
class Phrase:
    """One annotated phrase of a caption."""

    first_word: int  # index of its first word in Sentence.words
    words: tuple[str, ...]
    chain: str  # coreference chain id ("0": notvisual, never boxed)
    types: tuple[str, ...]  # e.g. ("people",), ("vehicles", "scene")

    @property
    def word_indices(self) -> range:
        return range(self.first_word, self.first_word + len(self.words))

    @property
    def head(self) -> str:
        """The head noun: the phrase's last word, lower-cased."""
        return self.words[-1].lower() if self.words else ""

    @property
    def report_types(self) -> tuple[str, ...]:
        """The types it is reported under (those of PHRASE_TYPES it has)."""
        return tuple(t for t in self.types if t in PHRASE_TYPES)


@dataclass(frozen=True)
class Sentence:
    """One Entities caption: its words (whitespace-split, as in the file) and phrases."""

    text: str
    words: tuple[str, ...]
    phrases: tuple[Phrase, ...]
    tokens: tuple[str, ...] = ()  # the words as the package tokenises captions (lower-cased, no punctuation)
    token_word: tuple[int, ...] = ()  # per token, the index of its word


@dataclass(frozen=True)
class EntitiesImage:
    """The annotations of one image."""

    image_id: str  # Flickr id
    width: int  # the original photo's size, as in the XML; boxes are in these pixels
    height: int
    boxes: dict[str, tuple[Box, ...]]  # chain id -> its boxes
    scene: frozenset[str]  # chains flagged <scene>
    no_box: frozenset[str]  # chains flagged <nobndbox>
    sentences: tuple[Sentence, ...] = field(default=())

    def region(self, phrase: Phrase) -> Optional[tuple[Box, ...]]:
        """The boxes of a scorable phrase's chain; None when it is not scorable (module docstring)."""
        if phrase.chain == "0" or "notvisual" in phrase.types or not phrase.report_types:
            return None
        if phrase.chain in self.scene or phrase.chain in self.no_box:
            return None
        return self.boxes.get(phrase.chain) or None


# --------------------------------------------------------------------------- parsing
def parse_sentence(line: str) -> Sentence:
    """One line of ``Sentences/<id>.txt``: ``[/EN#18/people A child] in [/EN#19/clothing a pink dress] .``"""
    return _with_tokens([_parse_line(line)])[0]


def _parse_line(line: str) -> Sentence:
    words: list[str] = []
    phrases: list[Phrase] = []
    pos = 0
    for m in _PHRASE.finditer(line):
        words += line[pos:m.start()].split()
        inner = m.group(3).split()
        types = tuple(t for t in m.group(2).split("/") if t)
        phrases.append(Phrase(len(words), tuple(inner), m.group(1), types))
        words += inner
        pos = m.end()
    words += line[pos:].split()
    plain = " ".join(words)
    return Sentence(plain, tuple(words), tuple(phrases))


def parse_sentences(text: str, tokens_of: Optional[dict[str, list[str]]] = None) -> tuple[Sentence, ...]:
    """All captions of a ``Sentences/<id>.txt`` file (blank lines skipped). ``tokens_of``: a word -> tokens
    cache shared across files (the tokenizer is pure Python; a split's files repeat most of their words)."""
    return tuple(_with_tokens([_parse_line(line) for line in text.splitlines() if line.strip()], tokens_of))


def _with_tokens(sentences: list[Sentence], tokens_of: Optional[dict[str, list[str]]] = None) -> list[Sentence]:
    """Tokenise every word of the sentences (new words in one tokenizer call); each token remembers its word."""
    tokens_of = {} if tokens_of is None else tokens_of
    words = [w for s in sentences for w in s.words]
    new = list(dict.fromkeys(w for w in words if w not in tokens_of))
    tokens_of.update(zip(new, tokenize_lines(new) if new else []))
    per_word = iter([tokens_of[w] for w in words])
    out = []
    for s in sentences:
        tokens, token_word = [], []
        for k in range(len(s.words)):
            toks = next(per_word)
            tokens += toks
            token_word += [k] * len(toks)
        out.append(Sentence(s.text, s.words, s.phrases, tuple(tokens), tuple(token_word)))
    return out


def _int(node: ET.Element, tag: str, path: Union[str, Path]) -> int:
    text = node.findtext(tag)
    if text is None:
        raise EntitiesError(f"{path}: <{node.tag}> has no <{tag}>")
    try:
        return int(float(text.strip()))
    except ValueError:
        raise EntitiesError(f"{path}: <{tag}> is not a number: {text!r}") from None


def parse_annotation(text: str, image_id: str, path: Union[str, Path] = "<xml>") -> EntitiesImage:
    """An ``Annotations/<id>.xml`` file (without sentences)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise EntitiesError(f"{path}: not valid XML ({exc})") from None
    size = root.find("size")
    if size is None:
        raise EntitiesError(f"{path}: no <size>")
    width, height = _int(size, "width", path), _int(size, "height", path)
    boxes: dict[str, list[Box]] = {}
    scene: set[str] = set()
    no_box: set[str] = set()
    for obj in root.findall("object"):
        names = [n.text.strip() for n in obj.findall("name") if n.text and n.text.strip()]
        bnd = obj.find("bndbox")
        if bnd is not None:
            box = (_int(bnd, "xmin", path) - 1.0, _int(bnd, "ymin", path) - 1.0,
                   float(_int(bnd, "xmax", path)), float(_int(bnd, "ymax", path)))
            for name in names:
                boxes.setdefault(name, []).append(box)
            continue
        flags = {tag: int(float(obj.findtext(tag, "0").strip() or 0)) for tag in ("scene", "nobndbox")}
        if flags["scene"] > 0:
            scene.update(names)
        if flags["nobndbox"] > 0:
            no_box.update(names)
    return EntitiesImage(image_id, width, height, {k: tuple(v) for k, v in boxes.items()},
                         frozenset(scene), frozenset(no_box))


def flickr_id(name: Union[str, Path]) -> str:
    """The Flickr id of an image name: ``1000268201_693b08cb0e.jpg`` (Flickr8k), ``1000268201.jpg``
    (Flickr30k), ``1000268201`` or a path to either -> ``1000268201``."""
    stem = Path(str(name)).name
    stem = stem.split(".", 1)[0]
    return stem.split("_", 1)[0]


class Entities:
    """A Flickr30k Entities folder: ``Entities(root).get("1000268201_693b08cb0e.jpg")``.

    Raises :class:`EntitiesError` naming the expected layout when ``root`` is not such a folder.
    Parsed images are kept (each file is read once per reader).
    """

    def __init__(self, root: Union[str, Path]):
        self.root = Path(root).expanduser()
        self.sentences_dir = self.root / "Sentences"
        self.annotations_dir = self.root / "Annotations"
        if not self.root.is_dir():
            raise EntitiesError(f"{self.root}: no such folder; {_LAYOUT}")
        missing = [d.name + "/" for d in (self.sentences_dir, self.annotations_dir) if not d.is_dir()]
        if missing:
            raise EntitiesError(f"{self.root}: no {' or '.join(missing)}; {_LAYOUT}")
        self._cache: dict[str, Optional[EntitiesImage]] = {}
        self._tokens: dict[str, list[str]] = {}  # word -> its tokens, across the files read

    def __repr__(self) -> str:
        return f"Entities({str(self.root)!r})"

    def __contains__(self, name: Union[str, Path]) -> bool:
        return self.get(name) is not None

    def get(self, name: Union[str, Path]) -> Optional[EntitiesImage]:
        """The annotations of an image given by Flickr id or file name; None when the folder has none."""
        key = flickr_id(name)
        if key not in self._cache:
            self._cache[key] = self._read(key)
        return self._cache[key]

    def _read(self, key: str) -> Optional[EntitiesImage]:
        if not key:
            return None
        txt, xml = self.sentences_dir / f"{key}.txt", self.annotations_dir / f"{key}.xml"
        if not (txt.is_file() and xml.is_file()):
            return None
        try:
            sentences = parse_sentences(txt.read_text(encoding="utf-8"), self._tokens)
            image = parse_annotation(xml.read_text(encoding="utf-8"), key, xml)
        except UnicodeDecodeError as exc:
            raise EntitiesError(f"{txt} or {xml}: not UTF-8 ({exc})") from None
        return EntitiesImage(image.image_id, image.width, image.height, image.boxes, image.scene,
                             image.no_box, sentences)


# --------------------------------------------------------------------------- caption alignment
def _norm_tokens(caption: Union[str, Sequence[str]]) -> list[str]:
    tokens = tokenize(caption) if isinstance(caption, str) else [t.lower() for t in caption]
    return [t for t in tokens if any(ch.isalnum() for ch in t)]


@dataclass(frozen=True)
class CaptionAlignment:
    """Per dataset caption the index of its Entities sentence (or None), with each pair's similarity."""

    sentence_of: tuple[Optional[int], ...]
    similarity: tuple[float, ...]  # 0 where unaligned

    @property
    def n_aligned(self) -> int:
        return sum(s is not None for s in self.sentence_of)

    @property
    def n_captions(self) -> int:
        return len(self.sentence_of)


def align_captions(captions: Sequence[Union[str, Sequence[str]]], sentences: Sequence[Sentence],
                   min_similarity: float = MIN_CAPTION_SIMILARITY) -> CaptionAlignment:
    """Pair dataset captions with Entities sentences one-to-one by text.

    ``captions``: strings, or their tokens (``PreparedImage.tokens``, faster). Both sides are
    tokenised and lower-cased (punctuation dropped); each pair's similarity is difflib's
    ratio of the token sequences; pairs are taken greedily from the most similar down (each caption
    and sentence used once), and a pair below ``min_similarity`` is left unaligned.
    """
    a = [_norm_tokens(c) for c in captions]
    b = [_norm_tokens(s.tokens) for s in sentences]
    pairs = []
    for i, ta in enumerate(a):
        sm = difflib.SequenceMatcher(None, b=ta, autojunk=False)  # b is cached
        for j, tb in enumerate(b):
            sm.set_seq1(tb)
            pairs.append((sm.ratio(), i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    sentence_of: list[Optional[int]] = [None] * len(a)
    sims = [0.0] * len(a)
    used: set[int] = set()
    for ratio, i, j in pairs:
        if ratio < min_similarity:
            break
        if sentence_of[i] is None and j not in used:
            sentence_of[i], sims[i] = j, ratio
            used.add(j)
    return CaptionAlignment(tuple(sentence_of), tuple(sims))


def aligned_sentences(captions: Sequence[Union[str, Sequence[str]]], image: Optional[EntitiesImage]) -> list[Optional[Sentence]]:
    """Per dataset caption its Entities sentence, or None (no annotations, or no match)."""
    if image is None:
        return [None] * len(captions)
    al = align_captions(captions, image.sentences)
    return [image.sentences[j] if j is not None else None for j in al.sentence_of]


def token_phrases(tokens: Sequence[str], sentence: Sentence) -> list[Optional[Phrase]]:
    """Per token of a dataset caption (as the package tokenises it) the sentence's phrase it lies in, or None.

    The sentence's words are tokenised the same way, each token remembering its word; the two token
    sequences are matched with difflib. Matching tokens take their word's phrase; a replaced run (a
    spelling fix) takes a phrase only when all the sentence tokens it replaces lie in one phrase.
    """
    word_phrase: list[Optional[Phrase]] = [None] * len(sentence.words)
    for p in sentence.phrases:
        for k in p.word_indices:
            word_phrase[k] = p
    ent_tokens = list(sentence.tokens)
    ent_phrase = [word_phrase[k] for k in sentence.token_word]
    out: list[Optional[Phrase]] = [None] * len(tokens)
    sm = difflib.SequenceMatcher(None, [t.lower() for t in tokens], ent_tokens, autojunk=False)
    for op, i0, i1, j0, j1 in sm.get_opcodes():
        if op == "equal" or (op == "replace" and i1 - i0 == j1 - j0):
            for i, j in zip(range(i0, i1), range(j0, j1)):
                out[i] = ent_phrase[j]
        elif op == "replace":
            inside = {id(p) for p in ent_phrase[j0:j1]}
            if len(inside) == 1 and ent_phrase[j0] is not None:
                for i in range(i0, i1):
                    out[i] = ent_phrase[j0]
    return out


def token_chains(tokens: Sequence[str], sentence: Sentence) -> list[Optional[str]]:
    """Per token the chain id of its phrase, or None (:func:`token_phrases`)."""
    return [p.chain if p is not None else None for p in token_phrases(tokens, sentence)]
