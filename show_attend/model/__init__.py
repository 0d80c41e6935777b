"""Stage 2 and 3, the model: image -> annotation vectors -> words.

    encoder.py   the CNN up to the map it taps (VGG16: block5_conv3), pooled to a g x g grid: a (B, L = g*g, D)
    backbones.py the ResNets (layer4 / layer3) and Xception beyond VGG
    specs.py     each encoder's tap, D, stride and receptive field (plain Python: the one registry)
    weights.py   torchvision/timm ImageNet weights, weights files by path, the offline messages
    decoder.py   the LSTM with soft attention of Xu et al. (2015); its header maps every symbol of the
                 paper (a_i, alpha_ti, beta_t, z_t, h_t, c_t, E, L_o, L_h, L_z, f_att, f_init) to code
    losses.py    the negative log-likelihood with the doubly stochastic attention term (eq. 14)
    decoding.py  batched greedy decoding and beam search
    ensemble.py  several decoders decoded as one (probabilities averaged per step)
    geometry.py  where a grid cell lies on the image, per encoder (numpy only: shared by viz and grounding)

Nothing is imported here, so ``show_attend.model.geometry`` loads without torch.
"""
