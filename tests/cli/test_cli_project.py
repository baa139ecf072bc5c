"""`lockgate init`, and a model file that does not pass its sha256 check when served."""

from __future__ import annotations

from pathlib import Path

from support import lockgate

from lockgate.metadata.registry import Registry
from lockgate.metadata.store import SqlMetadataStore


def test_init_creates_a_project_once(tmp_path: Path) -> None:
    result = lockgate("init", "myproject", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "myproject" / "pipeline.py").exists()
    assert (tmp_path / "myproject" / "data" / "penguins.csv").exists()
    again = lockgate("init", "myproject", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists and is not empty" in again.stderr


def test_serving_a_tampered_model_file_fails_with_its_path_and_nothing_else_changes(
    penguins_project: Path,
) -> None:
    assert lockgate("run", cwd=penguins_project).returncode == 0
    store = SqlMetadataStore(f"sqlite:///{penguins_project / '.lockgate' / 'metadata.db'}")
    pushed = Registry(store).get("penguins").artifact
    store.close()
    model_file = Path(pushed.uri) / "model" / "model.txt"
    model_file.write_text(model_file.read_text().replace("num_leaves", "num_leafs", 1))
    result = lockgate("serve", "--port", "1", cwd=penguins_project)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "sha256" in result.stderr and "model.txt" in result.stderr
    assert "Traceback" not in result.stderr
    store = SqlMetadataStore(f"sqlite:///{penguins_project / '.lockgate' / 'metadata.db'}")
    assert Registry(store).get("penguins").version == 1
    store.close()
