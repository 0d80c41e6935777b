"""Stage 2 and 3, the model: image -> annotation vectors -> words.

    encoder.py   VGG16 up to block5_conv3, pooled to a g x g grid: a (B, L = g*g, D = 512)
    decoder.py   the LSTM with soft attention of Xu et al. (2015); its header maps every symbol of the
                 paper (a_i, alpha_ti, beta_t, z_t, h_t, c_t, E, L_o, L_h, L_z, f_att, f_init) to code
    losses.py    the negative log-likelihood with the doubly stochastic attention term (eq. 14)
    decoding.py  batched greedy decoding and beam search
    ensemble.py  several decoders decoded as one (probabilities averaged per step)
    geometry.py  where a grid cell lies on the image (numpy only: shared by viz and grounding)

Nothing is imported here, so ``show_attend.model.geometry`` loads without torch.
"""
