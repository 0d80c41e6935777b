"""Flickr30k Entities: the official format on hand-written files, caption alignment, boxes on the grid."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from show_attend.data.boxes import FrameGrid, chain_boxes, to_frame
from show_attend.data.entities import (Entities, EntitiesError, align_captions, flickr_id, parse_sentence,
                                       token_chains, token_phrases)
from show_attend.data.images import image_size
from show_attend.data.transforms import ImageTransform
from show_attend.metrics.ptb_tokenizer import tokenize
from show_attend.model.geometry import grid_geometry, upsample_attention

SENTENCES = """\
[/EN#18/people A child] in [/EN#19/clothing a pink dress] is climbing up [/EN#20/other a set of stairs] in [/EN#23/scene an entry way] .
[/EN#18/people A little girl] in [/EN#19/clothing a pink dress] going into [/EN#21/scene a wooden cabin] .
[/EN#18/people A little girl] climbing [/EN#20/other the stairs] to [/EN#22/other her playhouse] .
[/EN#24/bodyparts/people The girl's hand] and [/EN#0/notvisual something] near [/EN#25/vehicles/scene a red bus] .
[/EN#18/people A girl] going into [/EN#21/scene a wooden building] .
"""

XML = """<annotation>
  <filename>1000268201.jpg</filename>
  <size><width>400</width><height>200</height><depth>3</depth></size>
  <object><name>18</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>100</xmax><ymax>100</ymax></bndbox></object>
  <object><name>18</name><bndbox><xmin>301</xmin><ymin>101</ymin><xmax>400</xmax><ymax>200</ymax></bndbox></object>
  <object><name>19</name><name>24</name><bndbox><xmin>11</xmin><ymin>21</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>
  <object><name>20</name><bndbox><xmin>201</xmin><ymin>1</ymin><xmax>280</xmax><ymax>100</ymax></bndbox></object>
  <object><name>22</name><scene>0</scene><nobndbox>1</nobndbox></object>
  <object><name>21</name><scene>1</scene><nobndbox>0</nobndbox></object>
  <object><name>23</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>400</xmax><ymax>200</ymax></bndbox></object>
  <object><name>25</name><bndbox><xmin>101</xmin><ymin>101</ymin><xmax>200</xmax><ymax>200</ymax></bndbox></object>
</annotation>
"""

# The dataset's captions of that image: reordered, two spelling differences, one unrelated caption.
CAPTIONS = [
    "A little girl climbing the stiars to her playhouse .",
    "A girl going into a wooden building .",
    "A child in a pink dress is climbing up a set of stairs in an entryway .",
    "Two men play chess on a bench in the park .",
    "The girl's hand and something near a red bus .",
]


def approx_boxes(boxes):
    return [pytest.approx(b) for b in boxes]


def write_entities(root: Path, image_id: str = "1000268201", sentences: str = SENTENCES, xml: str = XML) -> Path:
    (root / "Sentences").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Sentences" / f"{image_id}.txt").write_text(sentences)
    (root / "Annotations" / f"{image_id}.xml").write_text(xml)
    return root


@pytest.fixture()
def entities(tmp_path):
    return Entities(write_entities(tmp_path / "entities"))


def test_parse_sentence_phrases_types_and_words():
    s = parse_sentence("[/EN#24/bodyparts/people The girl's hand] and [/EN#0/notvisual something] near "
                       "[/EN#25/vehicles/scene a red bus] .")
    assert s.words == ("The", "girl's", "hand", "and", "something", "near", "a", "red", "bus", ".")
    assert s.text == "The girl's hand and something near a red bus ."
    assert [(p.first_word, p.words, p.chain, p.types) for p in s.phrases] == [
        (0, ("The", "girl's", "hand"), "24", ("bodyparts", "people")),
        (4, ("something",), "0", ("notvisual",)),
        (6, ("a", "red", "bus"), "25", ("vehicles", "scene"))]
    assert s.phrases[0].head == "hand" and s.phrases[2].report_types == ("vehicles",)


def test_reader_boxes_flags_and_scorable_phrases(entities):
    im = entities.get("1000268201")
    assert (im.width, im.height) == (400, 200) and len(im.sentences) == 5
    assert im.boxes["18"] == ((0.0, 0.0, 100.0, 100.0), (300.0, 100.0, 400.0, 200.0))  # two boxes: union
    assert im.boxes["19"] == im.boxes["24"] == ((10.0, 20.0, 50.0, 60.0),)  # one object, two names
    assert im.no_box == {"22"} and im.scene == {"21"}
    first, second, third, fourth, _ = im.sentences
    region = {p.words[-1]: im.region(p) for s in im.sentences for p in s.phrases}
    assert region["child"] == im.boxes["18"] and region["dress"] == im.boxes["19"]
    assert region["playhouse"] is None  # no-box chain
    assert region["cabin"] is None  # scene-flagged chain
    assert region["way"] is None  # a plain scene phrase, though boxed
    assert region["something"] is None  # notvisual
    assert region["hand"] == im.boxes["24"]  # several types
    assert region["bus"] == im.boxes["25"]  # vehicles/scene counts as a vehicle


def test_reader_finds_by_flickr8k_name_and_says_none_or_why(entities, tmp_path):
    assert flickr_id("1000268201_693b08cb0e.jpg") == flickr_id("/x/1000268201.jpg") == "1000268201"
    assert entities.get("1000268201_693b08cb0e.jpg") is entities.get("1000268201")
    assert entities.get("999_abc.jpg") is None and "999" not in entities
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "Sentences").mkdir()
    with pytest.raises(EntitiesError, match="no Annotations/.*Sentences/<id>.txt and Annotations/<id>.xml"):
        Entities(tmp_path / "wrong")
    with pytest.raises(EntitiesError, match="no such folder"):
        Entities(tmp_path / "absent")


def test_broken_xml_names_the_file(tmp_path):
    root = write_entities(tmp_path / "e", xml="<annotation><size><width>4</width></size>")
    with pytest.raises(EntitiesError, match="1000268201.xml"):
        Entities(root).get("1000268201")


def test_alignment_of_reordered_respelled_captions(entities):
    im = entities.get("1000268201")
    al = align_captions(CAPTIONS, im.sentences)
    assert al.sentence_of == (2, 4, 0, None, 3)  # one-to-one, the unrelated caption left out
    assert (al.n_aligned, al.n_captions) == (4, 5)
    assert al.similarity[1] == 1.0 and 0.6 < al.similarity[0] < 1.0


def test_token_level_phrases_through_the_package_tokenizer(entities):
    im = entities.get("1000268201")
    tokens = tokenize(CAPTIONS[0])  # a little girl climbing the stiars to her playhouse
    chains = token_chains(tokens, im.sentences[2])
    assert list(zip(tokens, chains)) == [
        ("a", "18"), ("little", "18"), ("girl", "18"), ("climbing", None), ("the", "20"), ("stiars", "20"),
        ("to", None), ("her", "22"), ("playhouse", "22")]
    tokens = tokenize(CAPTIONS[2])  # ... in an entryway (the sentence: "an entry way")
    phrases = token_phrases(tokens, im.sentences[0])
    assert tokens[-1] == "entryway" and phrases[-1].chain == "23"
    tokens = tokenize(CAPTIONS[4])  # the girl 's hand: the tokenizer splits the possessive
    assert token_chains(tokens, im.sentences[3])[:4] == ["24", "24", "24", "24"]


# ----------------------------------------------------------------------------- boxes on the grid
def test_boxes_to_frame_squash_and_crop_of_a_resized_copy():
    # The photo was annotated at 400x200; the file is a 200x100 copy; the encoder sees 112x112.
    box = [(200.0, 0.0, 280.0, 100.0)]
    squash = to_frame(box, (400, 200), (200, 100), ImageTransform(112, "squash"))
    assert list(squash) == approx_boxes([(56.0, 0.0, 78.4, 56.0)])
    # Centre crop of the 200x100 file: x in [50, 150) -> [0, 112); the box (100..140 in file px).
    crop = to_frame(box, (400, 200), (200, 100), ImageTransform(112, "center_crop"))
    assert list(crop) == approx_boxes([(56.0, 0.0, 100.8, 56.0)])
    # A box wholly outside the crop disappears; one across its border is cut.
    assert to_frame([(0.0, 0.0, 90.0, 50.0)], (400, 200), (200, 100), ImageTransform(112, "center_crop")) == ()
    assert to_frame([(0.0, 0.0, 200.0, 50.0)], (400, 200), (200, 100),
                    ImageTransform(112, "center_crop"))[0] == pytest.approx((0.0, 0.0, 56.0, 28.0))


def test_cell_mask_on_two_grids_crop():
    frame = [(56.0, 0.0, 100.8, 56.0)]  # the crop case above
    g7 = FrameGrid.of(112, grid_size=7).cell_mask(frame).reshape(7, 7)  # cells of 16 px
    col = np.array([0, 0, 0, 0.5, 1, 1, 5 / 16])  # pixel centres 96.5 .. 100.5 lie inside: 5 of 16
    row = np.array([1, 1, 1, 0.5, 0, 0, 0])
    np.testing.assert_allclose(g7, np.outer(row, col))
    g14 = FrameGrid.of(112, grid_size=14).cell_mask(frame).reshape(14, 14)  # cells of 8 px
    col = np.array([0] * 7 + [1] * 5 + [5 / 8, 0])
    row = np.array([1] * 7 + [0] * 7)
    np.testing.assert_allclose(g14, np.outer(row, col))


def test_cell_mask_squash_union_of_two_boxes():
    grid = FrameGrid.of(112, grid_size=7)
    frame = to_frame([(0.0, 0.0, 100.0, 100.0), (300.0, 100.0, 400.0, 200.0)], (400, 200), (400, 200),
                     ImageTransform(112, "squash"))
    assert list(frame) == approx_boxes([(0.0, 0.0, 28.0, 56.0), (84.0, 56.0, 112.0, 112.0)])
    m = grid.cell_mask(frame).reshape(7, 7)
    left, right = np.array([1, 12 / 16, 0, 0, 0, 0, 0]), np.array([0, 0, 0, 0, 0, 12 / 16, 1])  # 16 px cells
    np.testing.assert_allclose(m[:3], np.tile(left, (3, 1)))
    np.testing.assert_allclose(m[4:], np.tile(right, (3, 1)))
    assert m[3, 0] == 0.5 and m[3, 6] == 0.5  # row 3 is half above, half below y = 56
    assert grid.area_share(frame) == pytest.approx(0.25)  # two 28x56 boxes of 112x112
    assert grid.area_share(frame + frame[:1]) == pytest.approx(0.25)  # a union counts overlaps once
    assert grid.centre_in(frame).reshape(7, 7)[:, 0].tolist() == [True] * 3 + [False] * 4


@pytest.mark.parametrize("g, expected", [(7, 46 / 48), (14, 47 / 48)])
def test_mass_weights_are_the_upsampled_renormalised_mass(g, expected):
    # alpha uniform over the left 48 px of the frame's cells: bilinear upsampling ramps it down over
    # the next half cell on each side of the last centre; the mass left of x = 48 is hand-computed.
    grid = FrameGrid.of(112, grid_size=g)
    alpha = np.zeros((g, g))
    alpha[:, : 48 * g // 112] = 1.0
    alpha /= alpha.sum()
    box = [(0.0, 0.0, 48.0, 112.0)]
    inside = grid.mass_weights(box)
    assert alpha.reshape(-1) @ inside / (alpha.reshape(-1) @ grid.total) == pytest.approx(expected)
    # any map: the same as upsampling it explicitly
    rng = np.random.default_rng(0)
    a = rng.random((g, g))
    up = upsample_attention(a, 112, 112)
    explicit = up[:, :48].sum() / up.sum()
    assert a.reshape(-1) @ inside / (a.reshape(-1) @ grid.total) == pytest.approx(explicit)


def test_non_uniform_geometry_cells_cover_the_frame():
    geometry = grid_geometry("resnet50", 7, 224)  # cells shifted off the tiles
    assert not geometry.uniform
    grid = FrameGrid.of(224, geometry)
    np.testing.assert_allclose(grid.cell_mask([(0.0, 0.0, 224.0, 224.0)]), 1.0)
    assert grid.counts.sum() == 224


def test_chain_boxes_of_an_image_file(entities, tmp_path):
    path = tmp_path / "1000268201_693b08cb0e.jpg"
    Image.new("RGB", (224, 224)).save(path)
    im = entities.get(path.name)
    framed = chain_boxes(im, image_size(path), ImageTransform(224, "squash"))
    assert list(framed["18"]) == approx_boxes([(0.0, 0.0, 56.0, 112.0), (168.0, 112.0, 224.0, 224.0)])
    assert "22" not in framed and "21" not in framed  # no box, scene
