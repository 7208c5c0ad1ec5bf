"""The architecture's one-way dependencies, checked by import-linter."""

import subprocess
import sys
from pathlib import Path

import storage

ROOT = Path(__file__).resolve().parent.parent


def test_layers_api_broker_storage_contracts_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_layers_storage_public_surface_is_exactly_all():
    # "@py_builtins" and "@pytest_ar": pytest rewrites the asserts of every
    # package of a distribution that registers a plugin (api.pytest_plugin).
    public = {name for name in vars(storage) if not name.startswith(("_", "@"))} - {
        "check", "errors", "faults", "fileio", "index", "loader", "log", "record", "segment"}
    assert public == set(storage.__all__)
