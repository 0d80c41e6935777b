from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="show-attend",
    version="0.1.0",
    description="Image captioning with soft visual attention (Show, Attend and Tell) in PyTorch",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["show_attend", "show_attend.*"]),
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
    ],
    extras_require={
        "dev": ["pytest>=7", "nbclient>=0.7", "nbformat>=5.7", "ipykernel>=6"],
    },
)
