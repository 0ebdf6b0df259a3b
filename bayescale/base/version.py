"""The package's version: the installed distribution's, or the source tree's when it is not installed."""

from importlib.metadata import PackageNotFoundError, version as _version

__all__ = ["__version__"]

try:
    __version__ = _version("bayescale")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"
