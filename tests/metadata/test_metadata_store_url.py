"""A store URL that cannot work fails fast with what to do: not a database URL, a database
other than SQLite and PostgreSQL, a driver that is not installed, a server that does not
answer (within the connect timeout, not a hang)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from lockgate.errors import ConfigError, MetadataError
from lockgate.metadata import database
from lockgate.metadata.store import SqlMetadataStore


@pytest.mark.parametrize(
    ("url", "message", "hint"),
    [
        ("metadata.db", "is not a database URL", "sqlite:///"),
        ("mysql+pymysql://u@h/d", "names the database 'mysql'", "postgresql+psycopg://"),
        ("postgresql+pg8000://u@h/d", "needs the driver 'pg8000'", "pip install pg8000"),
        ("postgresql+psycopg2://u@h/d", "needs the driver 'psycopg2'", "psycopg 3"),
    ],
)
def test_a_store_url_that_cannot_work_is_a_config_error_with_a_hint(
    url: str, message: str, hint: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        SqlMetadataStore(url)
    assert caught.value.hint is not None and hint in caught.value.hint


def test_a_password_never_appears_in_the_message() -> None:
    with pytest.raises(ConfigError, match="needs the driver") as caught:
        SqlMetadataStore("postgresql+pg8000://team:secret@h/d")
    assert "secret" not in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a server that hangs, or a
    firewall that lets the handshake through): the client must give up on its own."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        yield int(listener.getsockname()[1])
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()


def test_a_server_that_does_not_answer_is_an_error_within_the_connect_timeout(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "CONNECT_TIMEOUT_S", 2)
    started = time.monotonic()
    with pytest.raises(MetadataError, match="cannot open the metadata store at postgresql") as e:
        SqlMetadataStore(f"postgresql+psycopg://team:secret@127.0.0.1:{silent_server}/lockgate")
    assert time.monotonic() - started < 10
    assert e.value.hint is not None and "LOCKGATE_STORE_URL" in e.value.hint
    assert "secret" not in str(e.value)


def test_the_url_may_set_its_own_connect_timeout(silent_server: int) -> None:
    started = time.monotonic()
    with pytest.raises(MetadataError, match="cannot open the metadata store"):
        SqlMetadataStore(f"postgresql+psycopg://u@127.0.0.1:{silent_server}/d?connect_timeout=1")
    assert time.monotonic() - started < 6
