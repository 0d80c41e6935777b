"""Stage 4, learning: ``train(cfg)`` writes one run folder (config, vocabulary, checkpoints,
history, TensorBoard, curves).

    trainer.py  teacher forcing with the paper's loss, validation by decoding, checkpoints, resume
    scst.py     self-critical sequence training with a CIDEr-D reward (Rennie et al. 2017)
    logs.py     what a run shows while it trains: the epoch line, TensorBoard samples and heatmaps
    state.py    the run's counters, its stops, the learning-rate schedule;  data.py  its loaders
(under torchrun: show_attend.utils.distributed)
"""
