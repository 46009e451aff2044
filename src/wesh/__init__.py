"""wesh: energy, water and comfort readings from buildings to headquarters.

The public API is pinned per package (see each package's ``__all__``); this top-level
module only exposes the version and the exception tree.
"""

from wesh.errors import WeshError

__all__ = ["WeshError", "__version__"]

__version__ = "0.1.0"
