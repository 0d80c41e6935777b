"""Prepared datasets: the vocabulary comes from the TRAIN split only."""
import json

from show_attend.config import load_config
from show_attend.data.prepare import PreparedDataset, format_summary, prepare_dataset
from show_attend.data.vocab import SPECIALS, Vocabulary

from test_sources import make_original


def _cfg(tmp_path, *extra):
    return load_config(None, ["data.source=flickr8k", f"data.root={tmp_path / 'raw'}",
                              f"data.cache_dir={tmp_path / 'cache'}", "data.min_word_count=2", *extra])


def test_vocabulary_from_train_only(tmp_path):
    make_original(tmp_path / "raw")
    # a word only in the val captions must not enter the vocabulary
    token_file = tmp_path / "raw" / "Flickr8k_text" / "Flickr8k.token.txt"
    token_file.write_text(token_file.read_text().replace("2000 grass", "2000 zebra zebra"))
    ds = prepare_dataset(_cfg(tmp_path).data, progress=False)
    assert "zebra" not in ds.vocab
    assert "dog" in ds.vocab and "grass" in ds.vocab
    assert ds.vocab.itos[:4] == list(SPECIALS)
    assert any("zebra" in t for im in ds.split("val") for t in im.tokens)  # references keep it
    assert ds.summary["vocab_size"] == len(ds.vocab)
    assert ds.summary["skipped"]["captions_of_images_in_no_split"] == 1
    text = format_summary(ds.summary)
    assert "images missing on disk" in text and "vocabulary" in text


def test_min_count_and_round_trip(tmp_path):
    make_original(tmp_path / "raw")
    ds = prepare_dataset(_cfg(tmp_path, "data.min_word_count=10").data, progress=False)
    # "dog" appears 15 times in train, "1000" only 5 times
    assert "dog" in ds.vocab and "1000" not in ds.vocab
    loaded = PreparedDataset.load(tmp_path / "cache")
    assert loaded.vocab.itos == ds.vocab.itos
    assert [im.image_id for im in loaded.images] == [im.image_id for im in ds.images]
    again = prepare_dataset(_cfg(tmp_path, "data.min_word_count=10").data, progress=False)
    assert again.vocab.itos == ds.vocab.itos
    changed = prepare_dataset(_cfg(tmp_path, "data.min_word_count=1").data, progress=False)
    assert len(changed.vocab) > len(ds.vocab)  # settings changed -> prepared again


def test_vocab_encode_decode(tmp_path):
    vocab = Vocabulary.build([["a", "dog"], ["a", "cat"], ["a", "dog"]], min_count=2)
    assert vocab.itos == [*SPECIALS, "a", "dog"]
    ids = vocab.encode(["a", "cat", "dog"])
    assert ids == [vocab.start_id, 4, vocab.unk_id, 5, vocab.end_id]
    assert vocab.encode(["a", "dog", "a"], max_length=2)[-1] == vocab.end_id
    assert vocab.decode(ids + [0, 0]) == ["a", "<unk>", "dog"]
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json").itos == vocab.itos
    assert json.loads((tmp_path / "v.json").read_text())["itos"][0] == "<pad>"
