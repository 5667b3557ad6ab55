"""Builds the wheel with libtornado_rs.so inside: `pip install ./python`
from a checkout runs `cargo build --release` in the repository (unless
TORNADO_RS_LIB names a built library to bundle) and ships the library in
the package, next to tornado_rs/_lib.py, which loads it from there."""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.dist import Distribution
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class BuildWithLibrary(build_py):
    def run(self):
        built = os.environ.get("TORNADO_RS_LIB")
        if not built:
            subprocess.check_call(["cargo", "build", "--release", "--lib"], cwd=REPO)
            built = os.path.join(REPO, "target", "release", "libtornado_rs.so")
        super().run()
        target = os.path.join(self.build_lib, "tornado_rs", "libtornado_rs.so")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)




class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)
