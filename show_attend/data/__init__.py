"""Stage 1, the data: raw files -> prepared splits -> tensors the model reads.

    sources.py    Flickr8k (original, Kaggle and Karpathy layouts) and Karpathy's split JSON
    synthetic.py  the generated shapes dataset, with each object's box (for the grounding score)
    prepare.py    splits, tokenised captions and the vocabulary, prepared once and cached
    vocab.py      word <-> index, built from the training split
    transforms.py opening an image and the encoder's input transform (with its crop box)
    features.py   the feature cache: the encoder runs once per split, training reads float16 memory maps
    loaders.py    datasets, collation and the length-grouped batch sampler
"""
