import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
SERVE = ["fastapi>=0.110", "uvicorn>=0.23", "python-multipart>=0.0.9"]
VERSION = re.search(r'__version__ = "(.+)"', (HERE / "show_attend" / "version.py").read_text()).group(1)

setup(
    name="show-attend",
    version=VERSION,
    description="Image captioning with soft visual attention (Show, Attend and Tell) in PyTorch",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["show_attend", "show_attend.*"]),
    # the shipped configs (show-attend train --config NAME) and the serve page travel with the package
    package_data={"show_attend": ["configs/*.yaml", "serve/page.html", "pretrained_models/*/*"]},
    include_package_data=True,
    entry_points={"console_scripts": ["show-attend = show_attend.cli:main"]},
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "pycocoevalcap>=1.2",
        "matplotlib>=3.6",
        "pillow>=9.0",
        "tensorboard>=2.12",
        "tqdm>=4.60",
        "PyYAML>=6.0",
        "numpy>=1.23",
        "safetensors>=0.4",
    ],
    extras_require={
        # the serve tests also need fastapi's TestClient (httpx) and a DevTools client for headless Chromium
        "dev": ["pytest>=7", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6", "timm>=0.9", *SERVE, "httpx>=0.24",
                "websocket-client>=1.6"],
        "hub": ["huggingface_hub>=0.20"],  # Captioner.from_pretrained("user/model"), online
        "timm": ["timm>=0.9"],  # encoder.name: xception (timm's legacy_xception)
        "serve": SERVE,  # show-attend serve: the web page and HTTP API
    },
)
