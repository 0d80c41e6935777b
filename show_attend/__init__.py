"""show-attend: image captioning with soft visual attention (Xu et al., 2015)."""
__version__ = "0.1.0"
