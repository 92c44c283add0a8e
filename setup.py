"""Packaging layout (the rest of the metadata is in pyproject.toml).

The top-level hyp/ and data/ folders are the one source of the bundled hyp and dataset yamls; the wheel carries
them inside the package as cawb/_bundled/hyp and cawb/_bundled/data, where cawb.utils.resources finds them. A
folder mapped into the package this way cannot be expressed next to package discovery in pyproject.toml, hence
this file; discovery stays automatic, so a new subpackage (and its *.yaml files) ships without editing it.
"""

from setuptools import find_namespace_packages, setup

BUNDLED = {"cawb._bundled.hyp": "hyp", "cawb._bundled.data": "data"}

setup(
    packages=find_namespace_packages(include=["cawb", "cawb.*"], exclude=["*.__pycache__"]) + list(BUNDLED),
    package_dir=BUNDLED,
    package_data={"": ["*.yaml"]},
)
