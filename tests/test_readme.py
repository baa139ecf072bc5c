"""Every shell command in README.md runs, in order, in a fresh folder, as a newcomer runs it.

The README's ```bash blocks are read as a session: ``cd DIR`` (alone or before ``&&``) moves
the session, ``lockgate serve`` starts in the background (on a free port, which the ``curl``
lines are pointed at) and is stopped at the end, ``curl`` answers must be JSON without an
``error``. Every other command must exit 0, or as its comment says (``# exits 1 when ...``). A command that cannot run here ends in
``# not run: REASON`` and is only syntax-checked (``bash -n``). The first block is the two
set-up lines; their ``pip install`` (and the recursive ``pytest``) are checked for shape, and
``lockgate demo`` runs.

Files a user brings to the data-check examples (``trips.parquet`` ...) are made here from
the penguins data, before the first command that names them: see ``USER_FILES``.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from support import free_port, wait_until_ready

README = Path(__file__).resolve().parents[1] / "README.md"
SET_UP = [
    "pip install -e . && lockgate demo",
    'pip install -e ".[test]" && pytest',
]
NOT_RUN = re.compile(r"#\s*not run:\s*\S")
EXITS = re.compile(r"#.*\bexits (\d)\b")


@dataclass(frozen=True)
class Command:
    text: str  # the command as written, comment included
    line: int  # README line it starts on
    run: bool  # False: marked "# not run: ..."

    @property
    def exit_status(self) -> int:
        """0, or what a trailing comment says (``# exits 1 when ...``)."""
        said = EXITS.search(self.text.splitlines()[-1])
        return int(said.group(1)) if said else 0

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text, comments=True)


def bash_blocks(text: str) -> list[list[Command]]:
    """The ```bash blocks of ``text``, each a list of commands (a quoted value may span lines,
    as the curl example's JSON does; a trailing backslash continues a line)."""
    blocks: list[list[Command]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```bash":
            i += 1
            continue
        block: list[Command] = []
        pending: list[str] = []
        start = 0
        i += 1
        while lines[i].strip() != "```":
            if not pending:
                start = i + 1
                if not lines[i].strip() or lines[i].lstrip().startswith("#"):
                    i += 1
                    continue
            pending.append(lines[i])
            joined = "\n".join(pending)
            if not joined.endswith("\\") and _complete(joined):
                block.append(Command(joined, start, not NOT_RUN.search(joined.splitlines()[-1])))
                pending = []
            i += 1
        assert not pending, f"README line {start}: unfinished command {pending!r}"
        blocks.append(block)
        i += 1
    return blocks


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on on the next line
        return False
    return True


def commands() -> list[Command]:
    blocks = bash_blocks(README.read_text(encoding="utf-8"))
    return [c for block in blocks[1:] for c in block]


def test_the_readme_opens_with_the_two_set_up_lines() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = bash_blocks(text)
    assert text.index("```bash") < text.index("\n## "), "the set-up block comes first"
    shape = [shlex.split(c.text, comments=True) for c in blocks[0]]
    assert shape == [shlex.split(line) for line in SET_UP]


@pytest.mark.parametrize("command", commands(), ids=lambda c: f"line{c.line}")
def test_every_readme_command_is_valid_shell(command: Command) -> None:
    done = subprocess.run(["bash", "-n", "-c", command.text], capture_output=True, text=True)
    assert done.returncode == 0, f"README line {command.line}: {done.stderr}"
    assert command.words, f"README line {command.line}: no command"


def test_few_readme_commands_are_left_unrun() -> None:
    unrun = [c for c in commands() if not c.run]
    assert len(unrun) <= 3, [c.text for c in unrun]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def test_every_readme_python_sample_runs(tmp_path: Path) -> None:
    """Each sample runs as a file of its own (a pipeline function is called: its graph is
    checked when it is built)."""
    import runpy

    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks
    for i, block in enumerate(blocks):
        path = tmp_path / f"readme_sample_{i}.py"
        path.write_text(block, encoding="utf-8")
        namespace = runpy.run_path(str(path))
        if callable(namespace.get("pipeline")):
            namespace["pipeline"]()


# -- the session ---------------------------------------------------------------------------


def _penguins(cwd: Path) -> Path:
    return Path(__file__).resolve().parents[1] / "lockgate/templates/penguins/data/penguins.csv"


def _headerless_tsv(cwd: Path, target: Path) -> None:
    rows = _penguins(cwd).read_text().splitlines(keepends=True)[1:]
    target.write_bytes(gzip.compress("".join(r.replace(",", "\t") for r in rows).encode()))


def _parquet(rows: slice) -> Callable[[Path, Path], None]:
    """Every ``rows.step``-th row of the penguins (sorted by species) from ``rows.start``."""

    def make(cwd: Path, target: Path) -> None:
        table = pacsv.read_csv(_penguins(cwd))
        pq.write_table(table.take(list(range(table.num_rows))[rows]), target)

    return make


def _span(rows: slice) -> Callable[[Path, Path], None]:
    def make(cwd: Path, target: Path) -> None:
        target.mkdir()
        _parquet(rows)(cwd, target / "part-0.parquet")

    return make


def _schema_copy(cwd: Path, target: Path) -> None:
    shutil.copy(cwd / "trips-schema.yaml", target)


def _schema(cwd: Path, target: Path) -> None:
    from lockgate.data.schema import Schema
    from lockgate.data.statistics import compute_statistics

    Schema.from_statistics(compute_statistics([_penguins(cwd)])).dump(target)


def _skops(cwd: Path, target: Path) -> None:
    import numpy as np
    import skops.io
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    X = np.column_stack([y + rng.normal(0, 0.3, 200), rng.normal(0, 1, (200, 2))])
    skops.io.dump(LogisticRegression().fit(X, y), target)


#: Files the README's examples take from the user, made from the penguins data (or
#: scikit-learn's) when a command names one that does not exist yet.
USER_FILES: dict[str, Callable[[Path, Path], None]] = {
    "trips.parquet": _parquet(slice(None)),
    "train.parquet": _parquet(slice(None)),
    "new.parquet": _parquet(slice(0, None, 2)),
    # two spans alike (a sample of 170 penguins per span drifts over the default thresholds)
    "span-1": _span(slice(None)),
    "span-2": _span(slice(None, None, -1)),
    "trips-schema.yaml": _schema,
    "other.yaml": _schema_copy,
    "model.skops": _skops,
    "penguins.tsv.gz": _headerless_tsv,
}


class Session:
    """A newcomer's terminal: a folder, an environment, a server in the background."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.port = free_port()
        bin_dir = str(Path(sys.executable).parent)
        keep = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
        self.env = {
            **keep,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "LOCKGATE_SERVE_PORT": str(self.port),
            # every request logged and written at once, so that `lockgate skew` has a log
            "LOCKGATE_SERVE_LOG_SAMPLE_RATE": "1",
            "LOCKGATE_SERVE_LOG_FLUSH_INTERVAL_S": "0.2",
            "LOCKGATE_SERVE_POLL_INTERVAL_S": "0.5",
        }
        self.servers: list[subprocess.Popen[str]] = []

    def run(self, command: Command) -> None:
        words = command.words
        if words[:1] == ["cd"]:
            self.cwd = (self.cwd / words[1]).resolve()
            rest = command.text.split("&&", 1)
            if len(rest) == 1:
                return
            command = Command(rest[1].strip(), command.line, command.run)
            words = command.words
        self._bring_files(words)
        if words[:2] == ["lockgate", "serve"]:
            self._serve(command)
        elif words[:1] == ["curl"]:
            self._curl(command)
        else:
            done = self._bash(command.text)
            assert done.returncode == command.exit_status, self._failed(command, done)

    def _bash(self, text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", text],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def _bring_files(self, words: list[str]) -> None:
        for word in words:
            name = word.rstrip("/")
            if name in USER_FILES and not (self.cwd / name).exists():
                USER_FILES[name](self.cwd, self.cwd / name)

    def _serve(self, command: Command) -> None:
        self.stop()
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command.text}"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.servers.append(process)
        wait_until_ready(process, f"http://127.0.0.1:{self.port}")

    def _curl(self, command: Command) -> None:
        assert self.servers, f"README line {command.line}: curl before lockgate serve"
        text = re.sub(r"(localhost|127\.0\.0\.1):8080", rf"\1:{self.port}", command.text)
        done = self._bash(text)
        assert done.returncode == 0, self._failed(command, done)
        answer = json.loads(done.stdout)
        assert "error" not in answer, self._failed(command, done)
        # the request log is written off the request path: wait for it, for `lockgate skew`
        deadline = time.monotonic() + 10
        while not list(self.cwd.glob(".lockgate/artifacts/serving/*/inference_log/*/*.parquet")):
            assert time.monotonic() < deadline, "the request log was not written"
            time.sleep(0.1)

    def _failed(self, command: Command, done: subprocess.CompletedProcess[str]) -> str:
        return (
            f"README line {command.line} failed (exit {done.returncode}) in {self.cwd}:\n"
            f"$ {command.text}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )

    def stop(self) -> None:
        for process in self.servers:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
        self.servers.clear()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    terminal = Session(tmp_path)
    try:
        yield terminal
    finally:
        terminal.stop()


def test_every_readme_command_runs_in_order(session: Session) -> None:
    blocks = bash_blocks(README.read_text(encoding="utf-8"))
    demo = shlex.split(SET_UP[0])[shlex.split(SET_UP[0]).index("&&") + 1 :]
    assert blocks[0] and demo == ["lockgate", "demo"]
    session.run(Command(shlex.join(demo), blocks[0][0].line, True))
    curated = session.cwd / "lockgate-demo" / "schema.yaml"
    written = curated.read_text(encoding="utf-8")  # the curated schema the demo's run wrote
    ran = 0
    for command in commands():
        if command.run:
            session.run(command)
            ran += 1
    assert ran >= 20
    # following the README never overwrites the project's curated schema behind its back
    assert curated.read_text(encoding="utf-8") == written
