"""`python -m exporters.prometheus`: regenerate METRICS.md, the alerting rules and their promtool tests."""

from __future__ import annotations

from exporters.prometheus.generate import REPO, write_generated


def main() -> None:
    changed = write_generated()
    for path in changed:
        print(f"wrote {path.relative_to(REPO)}")
    if not changed:
        print("generated files are up to date")


if __name__ == "__main__":
    main()
