"""The `mailhygiene` console script (pyproject.toml [project.scripts]: pipeline.console:main).

Its own package, above the CLI (docs/architecture.md), so that importing it loads nothing but
itself and pipeline/core/signals.py: main() installs the start-up signal handlers first, so that a
Ctrl-C while click, the CLI and the stages are imported ends the process with one line and 130,
not a traceback (pipeline/core/signals.py), and then runs the CLI (pipeline.cli.main).
"""

from __future__ import annotations


def main() -> None:
    from ..core.signals import end_at_once

    end_at_once()
    from ..cli import main as run

    run()
