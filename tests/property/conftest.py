"""Hypothesis for the property tests: nothing written in the working tree.

No example database (`database=None`), and Hypothesis's own cache (the constants it collects from the code under
test) goes to the system's temp dir instead of `./.hypothesis/`.
"""

import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

settings.register_profile("property", database=None)
settings.load_profile("property")
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "minewatch-hypothesis")
