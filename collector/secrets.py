"""Secrets named by `<name>_env` / `<name>_file` keys: resolved once at start-up, never printed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretStr, model_validator

from collector.redact import Redactor

MAX_SECRET_FILE_BYTES = 64 * 1024
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_secret_file(path: Path) -> str:
    """A secret file's text, stripped; at most 64 KiB are read (a device like /dev/zero never ends).

    Raises OSError, UnicodeDecodeError, or ValueError (a NUL byte in the path).
    """
    with path.open("rb") as handle:
        return handle.read(MAX_SECRET_FILE_BYTES).decode("utf-8").strip()


class SecretMissing(ValueError):
    """A named secret could not be read; `key` is the config key that names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key


class WithSecrets(BaseModel):
    """A settings model whose secrets are given as `<name>_env` or `<name>_file` keys.

    Subclasses list them in `secret_names`; `required_secrets` must be named, the others are optional.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    secret_names: ClassVar[tuple[str, ...]] = ()
    required_secrets: ClassVar[tuple[str, ...]] = ()
    _resolved: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_source_per_secret(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in cls.secret_names:
            given = [key for key in (f"{name}_env", f"{name}_file") if data.get(key) not in (None, "")]
            if len(given) > 1:
                raise ValueError(f"give {name}_env or {name}_file, not both")
            if not given and name in cls.required_secrets:
                raise ValueError(f"missing {name}_env or {name}_file (secrets never go in the TOML itself)")
            if name in data:
                raise ValueError(f"{name} must not be written in the config: use {name}_env or {name}_file")
        return data

    def resolve_secrets(self, environ: Mapping[str, str], base_dir: Path, redactor: Redactor) -> None:
        """Read every named secret now, register it with the redactor; raise SecretMissing naming the key."""
        for name in self.secret_names:
            env_name = getattr(self, f"{name}_env", None)
            file_name = getattr(self, f"{name}_file", None)
            if env_name:
                if not _ENV_NAME.fullmatch(env_name):  # never echoed: it may be the secret pasted in by mistake
                    raise SecretMissing(f"{name}_env", "not an environment variable name (is it the secret itself?)")
                value = environ.get(env_name)
                if not value:
                    raise SecretMissing(f"{name}_env", f"environment variable {env_name} is not set or empty")
            elif file_name:
                path = Path(file_name) if Path(file_name).is_absolute() else base_dir / file_name
                try:
                    value = read_secret_file(path)
                except OSError as exc:
                    raise SecretMissing(f"{name}_file", f"cannot read {path}: {exc.strerror}") from None
                except UnicodeDecodeError:
                    raise SecretMissing(f"{name}_file", f"cannot read {path}: not UTF-8 text") from None
                except ValueError:  # a NUL byte in the path
                    raise SecretMissing(f"{name}_file", "the file name is not a valid path") from None
                if not value:
                    raise SecretMissing(f"{name}_file", f"{path} is empty")
            else:
                continue
            redactor.add(value)
            self._resolved[name] = SecretStr(value)

    def register_secrets(self, redactor: Redactor) -> None:
        """Make sure `redactor` knows every resolved secret (whichever redactor loaded the config)."""
        for value in self._resolved.values():
            redactor.add(value.get_secret_value())

    def secret(self, name: str) -> str | None:
        """The resolved value of a secret, or None if it was not configured."""
        resolved = self._resolved.get(name)
        return resolved.get_secret_value() if resolved else None
