"""The code a step runs: its function, the project modules that function reaches, and the
versions of the libraries under it — what the cache key must cover beyond the step's own
source, so that editing a helper two imports away re-runs the step.

Modules are found without importing anything: names the function uses are looked up in its
globals (and closure), imports anywhere in its body and in every project file reached are
read with ``ast`` and resolved against the project folder. A module counts as the
project's only where its dotted name maps to a file under the folder (``helpers.features``
to ``helpers/features.py``), so a virtual environment inside the folder is not "project".
Files are hashed once per process while their size and mtime stay the same.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import os
import re
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Libraries whose version is part of every step's cache key: they produce the artifacts.
LIBRARIES = (
    "lockgate",
    "numpy",
    "pyarrow",
    "polars",
    "scikit-learn",
    "lightgbm",
    "xgboost",
    "torch",
    "safetensors",
)

_SIMPLE = (str, int, float, bool, type(None), bytes)


@functools.cache
def library_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed.

    Read from the ``name-version.dist-info`` folder names on ``sys.path`` (one listing per
    folder and process, about a millisecond), as ``importlib.metadata`` would find them
    first; only an ``.egg-info`` (an old-style development install) asks
    ``importlib.metadata``, which reads every distribution's metadata (tens of ms)."""
    wanted = _normalise(distribution)
    for name, version in _installed():
        if name == wanted:
            if version is not None:
                return version
            from importlib import metadata

            try:
                return metadata.version(distribution)
            except metadata.PackageNotFoundError:
                return None
    return None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.cache
def _installed() -> tuple[tuple[str, str | None], ...]:
    """(normalised name, version or None for an egg-info) of what ``sys.path`` holds."""
    found: list[tuple[str, str | None]] = []
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for item in sorted(names):
            if item.endswith(".dist-info"):
                name, _, version = item[: -len(".dist-info")].partition("-")
                found.append((_normalise(name), version or None))
            elif item.endswith(".egg-info"):
                found.append((_normalise(item[: -len(".egg-info")].split("-")[0]), None))
    return tuple(found)


def library_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """{distribution: version} of :data:`LIBRARIES` and ``extra`` that are installed."""
    found = {name: library_version(name) for name in (*LIBRARIES, *extra)}
    return {name: version for name, version in sorted(found.items()) if version is not None}


@dataclass(frozen=True)
class _FileInfo:
    stamp: tuple[int, int, int]  # (mtime_ns, size, inode)
    sha256: str
    imports: tuple[tuple[str, int, tuple[str, ...]], ...]  # (module, level, names)


_files: dict[Path, _FileInfo] = {}
_files_lock = threading.Lock()

#: Held by every lockgate call into CPython's ast module (ast.parse here; numpy's
#: ast.literal_eval of .npy headers inside skops loads): CPython 3.11 keeps the AST
#: converter's recursion depth per interpreter, not per thread, so two threads converting
#: at once fail with "AST constructor recursion depth mismatch" (gh-106905).
AST_LOCK = threading.RLock()


def parse_source(source: str | bytes, filename: str = "<unknown>") -> ast.AST:
    """``ast.parse`` under ``AST_LOCK``."""
    with AST_LOCK:
        return ast.parse(source, filename=filename)


def _file_info(path: Path) -> _FileInfo:
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _files_lock:
        known = _files.get(path)
    if known is not None and known.stamp == stamp:
        return known
    data = path.read_bytes()
    try:
        tree: ast.AST | None = parse_source(data, filename=str(path))
    except (SyntaxError, ValueError):
        tree = None  # it fails when imported; its hash still changes with the text
    info = _FileInfo(stamp, hashlib.sha256(data).hexdigest(), _imports(tree))
    with _files_lock:
        _files[path] = info
    return info


def _imports(tree: ast.AST | None) -> tuple[tuple[str, int, tuple[str, ...]], ...]:
    if tree is None:
        return ()
    found: list[tuple[str, int, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level, tuple(a.name for a in node.names)))
    return tuple(found)


class ProjectCode:
    """Finds the project files that functions reach, under one project folder."""

    def __init__(self, project_dir: str | Path) -> None:
        self.root = Path(project_dir).resolve()

    def fingerprint(self, fns: Iterable[Callable[..., Any]]) -> dict[str, str]:
        """{project file relative to the folder: sha256} of every module the functions reach,
        transitively."""
        files: set[Path] = set()
        for fn in fns:
            module = getattr(fn, "__module__", None) or ""
            if module == "lockgate" or module.startswith("lockgate."):
                continue  # lockgate's own code: covered by its version
            self._reach_function(fn, files, seen=set())
        todo = sorted(files)
        while todo:
            path = todo.pop()
            for module, level, names in _file_info(path).imports:
                for found in self._resolve_import(path, module, level, names):
                    if found not in files:
                        files.add(found)
                        todo.append(found)
        return {
            path.relative_to(self.root).as_posix(): _file_info(path).sha256
            for path in sorted(files)
        }

    def _reach_function(self, fn: Callable[..., Any], files: set[Path], seen: set[int]) -> None:
        """Files reached from one function: imports in its body, and the globals and closure
        values it names that come from project modules (functions and classes of its own
        module are followed the same way)."""
        fn = inspect.unwrap(fn)
        if id(fn) in seen:
            return
        seen.add(id(fn))
        try:
            source = textwrap.dedent(inspect.getsource(fn))
            tree = parse_source(source)
        except (OSError, TypeError, SyntaxError):
            return
        own_module = getattr(fn, "__module__", None)
        own_file = _module_file(own_module)
        for module, level, names in _imports(tree):
            if own_file is not None:
                files.update(self._resolve_import(own_file, module, level, names))
            else:
                files.update(self._resolve_import(self.root / "__init__.py", module, 0, names))
        namespace = dict(getattr(fn, "__globals__", {}))
        code = getattr(fn, "__code__", None)
        closure = getattr(fn, "__closure__", None) or ()
        if code is not None:
            for name, cell in zip(code.co_freevars, closure, strict=False):
                try:
                    namespace[name] = cell.cell_contents
                except ValueError:
                    continue
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        for name in sorted(used):
            if name not in namespace:
                continue
            value = namespace[name]
            if isinstance(value, types.ModuleType):
                files.update(self._module_files(value.__name__))
                continue
            home = getattr(value, "__module__", None)
            if not isinstance(home, str):
                home = type(value).__module__
            if home == own_module and (inspect.isfunction(value) or inspect.isclass(value)):
                self._reach_function(value, files, seen)
            else:
                files.update(self._module_files(home))

    def _module_files(self, dotted: str | None) -> list[Path]:
        """The project file of a module (and its packages' ``__init__.py``), or nothing
        when the module is not the project's."""
        if not dotted:
            return []
        parts = dotted.split(".")
        found: list[Path] = []
        for depth in range(1, len(parts) + 1):
            base = self.root.joinpath(*parts[:depth])
            module_file = base.with_suffix(".py")
            package_file = base / "__init__.py"
            if depth < len(parts):
                if package_file.is_file():
                    found.append(package_file)
                elif not base.is_dir():
                    return []
            elif module_file.is_file():
                found.append(module_file)
            elif package_file.is_file():
                found.append(package_file)
            elif not base.is_dir():
                return []
        return found

    def _resolve_import(
        self, importer: Path, module: str, level: int, names: tuple[str, ...]
    ) -> list[Path]:
        """Project files an import statement in ``importer`` loads (``from a import b``
        loads ``a/b.py`` too when ``b`` is a submodule)."""
        if level:
            try:
                package = importer.parent.relative_to(self.root).parts
            except ValueError:
                return []
            if level - 1 > len(package):
                return []
            base = list(package[: len(package) - (level - 1)])
            dotted = ".".join([*base, *([module] if module else [])])
        else:
            dotted = module
        found = self._module_files(dotted) if dotted else []
        for name in names:
            if name != "*":
                found.extend(self._module_files(f"{dotted}.{name}" if dotted else name))
        return found


def _module_file(module: str | None) -> Path | None:
    loaded = sys.modules.get(module or "")
    file = getattr(loaded, "__file__", None)
    return Path(file).resolve() if file else None


def source_fingerprint(fn: Callable[..., Any]) -> str:
    """sha256 of a function's source and of the functions and classes of its own module that
    it uses (transitively): a helper next to a trainer in ``pipeline.py`` counts, the other
    steps' parameters in that file do not."""
    digest = hashlib.sha256()
    for source in _own_sources(inspect.unwrap(fn), seen=set()):
        digest.update(source.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _own_sources(fn: Any, seen: set[int]) -> list[str]:
    if id(fn) in seen:
        return []
    seen.add(id(fn))
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return [f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"]
    sources = [source]
    module = getattr(fn, "__module__", None)
    if module == "lockgate" or (module or "").startswith("lockgate."):
        return sources
    namespace = getattr(fn, "__globals__", None)
    if namespace is None:
        return sources
    try:
        tree = parse_source(textwrap.dedent(source))
    except SyntaxError:
        return sources
    for name in sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}):
        value = namespace.get(name)
        if value is None or value is fn:
            continue
        if (inspect.isfunction(value) or inspect.isclass(value)) and getattr(
            value, "__module__", None
        ) == module:
            sources.extend(_own_sources(value, seen))
        elif isinstance(value, _SIMPLE):
            sources.append(f"{name}={value!r}")
    return sources


_path_lock = threading.Lock()
_path_users: dict[str, int] = {}  # entries this module put on sys.path, and by how many runs


@contextmanager
def importable(project_dir: str | Path) -> Iterator[None]:
    """The project folder on ``sys.path`` for as long as a run lasts, so that a step body
    can ``import helpers`` (a module of the project) whichever thread runs it. An entry that
    was there before is left alone; two runs of one project in a process share theirs."""
    entry = str(Path(project_dir).resolve())
    with _path_lock:
        if entry in _path_users:
            _path_users[entry] += 1
        elif entry not in sys.path:
            sys.path.insert(0, entry)
            _path_users[entry] = 1
        else:
            entry = ""  # someone else's: not ours to remove
    try:
        yield
    finally:
        if entry:
            with _path_lock:
                _path_users[entry] -= 1
                if not _path_users[entry]:
                    del _path_users[entry]
                    if entry in sys.path:
                        sys.path.remove(entry)


def make_importable(project_dir: str | Path) -> None:
    """The project folder on ``sys.path`` for the rest of this process: what a worker in
    another process (a Ray task) needs before a step body imports a project module."""
    entry = str(Path(project_dir).resolve())
    with _path_lock:
        if entry not in sys.path:
            sys.path.insert(0, entry)
