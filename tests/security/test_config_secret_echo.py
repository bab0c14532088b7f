"""A config error never quotes a value that may be a secret.

A password pasted into `basic_auth_username` (where it breaks the pattern), or into a `*_env` key in place of
the variable's name, must not be printed back: the error names the key and what is wrong, never the value.
Values of other keys (a slug, a choice) are still quoted, and numbers always are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collector.adapters.registry import source_registry
from collector.config import ConfigInvalid, load_config
from collector.redact import Redactor

GOOD = Path(__file__).parent.parent / "configs" / "good"
REGISTRY = source_registry()
SECRET = "Tr0ub4dor&3-horse"


def _errors(tmp_path: Path, exporter: str, environ: dict[str, str] | None = None) -> list[str]:
    root = tmp_path / "good"
    shutil.copytree(GOOD, root)
    main = root / "minewatch.toml"
    main.write_text(main.read_text(encoding="utf-8") + f"\n[exporter]\n{exporter}\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid) as raised:
        load_config(main, REGISTRY, redactor=Redactor(), environ=environ or {})
    return [str(error) for error in raised.value.errors]


def test_a_password_in_the_username_is_not_echoed(tmp_path: Path) -> None:
    errors = _errors(tmp_path, f'basic_auth_username = "admin:{SECRET}"\nbasic_auth_password_env = "MW_PW"')
    assert any("basic_auth_username" in e and "must match the pattern" in e for e in errors), errors
    assert not any(SECRET in e or "admin:" in e for e in errors), errors
    assert any("got a string" in e for e in errors), errors


def test_a_secret_pasted_as_the_variable_name_is_not_echoed(tmp_path: Path) -> None:
    errors = _errors(tmp_path, f'basic_auth_username = "scraper"\nbasic_auth_password_env = "{SECRET}"')
    assert any("basic_auth_password_env" in e and "not an environment variable name" in e for e in errors), errors
    assert not any(SECRET in e for e in errors), errors


def test_a_valid_but_unset_variable_is_still_named(tmp_path: Path) -> None:
    errors = _errors(tmp_path, 'basic_auth_username = "scraper"\nbasic_auth_password_env = "MW_UNSET_PW"')
    assert any("environment variable MW_UNSET_PW is not set" in e for e in errors), errors


def test_values_of_other_keys_are_still_quoted(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "port = 99999")
    assert any("must be <= 65535, got 99999" in e for e in errors), errors
