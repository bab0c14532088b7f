"""What every golden case checks, whatever its source: the expected file, written on request, then held to."""

from __future__ import annotations

from pathlib import Path

from collector.runner import PollResult


def regenerate(folder: Path, result: PollResult, lines: list[str], message: str) -> None:
    """Write what the runner produced as the case's expected file (then check it by hand)."""
    (folder / "expected.lp").unlink(missing_ok=True)
    (folder / "expected.err").unlink(missing_ok=True)
    if result.success:
        (folder / "expected.lp").write_text("".join(f"{line}\n" for line in lines))
    else:
        (folder / "expected.err").write_text(f"{result.error_kind}\n{message}\n")


def assert_matches_expected(folder: Path, result: PollResult, lines: list[str], message: str) -> None:
    """`expected.lp`: exactly these lines. `expected.err`: the error kind (and a message substring), and only
    the failed poll's `source_health` point written: no point is ever made up as zero."""
    expected_lp, expected_err = folder / "expected.lp", folder / "expected.err"
    assert expected_lp.is_file() != expected_err.is_file(), "a case has exactly one of expected.lp / expected.err"
    if expected_lp.is_file():
        assert result.success, f"poll failed: {result.error_kind}: {result.message}"
        assert lines == expected_lp.read_text().splitlines()
        return
    kind, *substring = expected_err.read_text().splitlines()
    assert (result.success, result.error_kind) == (False, kind), f"{result.message}; wrote {lines}"
    if substring:
        assert substring[0] in message
    assert len(lines) == 1, "a failed poll writes its health point and nothing else"
    assert lines[0].startswith("source_health,")
    assert f'error_kind="{kind}"' in lines[0]
    assert "success=0i,stale=1i" in lines[0]


def split_unescaped(text: str, separator: str, *, quotes: bool) -> list[str]:
    """Split line-protocol text at `separator` outside backslash escapes (and, if `quotes`, outside strings)."""
    parts, current, escaped, quoted = [], "", False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"' and quotes:
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts
