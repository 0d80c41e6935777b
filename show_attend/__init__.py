"""show-attend: image captioning with soft visual attention (Xu et al., 2015)."""
__version__ = "0.1.0"

from .api import Captioner  # noqa: E402
from .config import Config, load_config  # noqa: E402

__all__ = ["Captioner", "Config", "load_config", "__version__"]
