"""Every file ``init`` writes ends with exactly one final newline (POSIX text files; editors
and ``git diff`` flag a missing one)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import Run


def test_scaffolded_files_end_with_one_newline(run_cli: Callable[..., Run], tmp_path: Path) -> None:
    result = run_cli("init", str(tmp_path / "new"))
    assert result.exit_code == 0, result.stderr
    written = [path for path in (tmp_path / "new").rglob("*") if path.is_file()]
    assert len(written) >= 2
    for path in written:
        data = path.read_bytes()
        assert data.endswith(b"\n") and not data.endswith(b"\n\n"), path.name
    assert run_cli("check", cwd=tmp_path / "new").exit_code == 0
