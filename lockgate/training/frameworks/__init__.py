"""Model frameworks behind one protocol and one registry (``base.Framework``).

Adding a framework is one module exposing ``FRAMEWORK`` and its name in ``_BUILTIN``, or,
from another package, an entry point in the ``lockgate.frameworks`` group whose object is a
``Framework`` (or a class that builds one with no arguments)."""

from lockgate.training.frameworks.base import Framework
from lockgate.training.frameworks.registry import frameworks, get_framework, register_framework

__all__ = ["Framework", "frameworks", "get_framework", "register_framework"]
