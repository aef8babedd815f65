"""Build hook: compile the Postfix block scanner (pipeline/ingest/native/postfix_scan.c).

hatchling runs this for every wheel and editable install (`pip install .`, `pip install -e .`,
`make venv`). The scanner is plain C99 loaded with ctypes (no Python headers needed), compiled
with $CC or the compiler Python was built with. When no compiler works, the install still
succeeds with a warning and ingest uses the numpy scanner (slower, same results).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("pipeline") / "ingest" / "native" / "postfix_scan.c"
LIBRARY = Path("pipeline") / "ingest" / "native" / "_postfix_scan.so"


def compile_scanner(root: Path) -> str | None:
    """Compile the scanner next to its source; None when it worked, else why not."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    out = root / LIBRARY
    tmp = out.with_suffix(".so.tmp")
    cmd = [*cc, "-O3", "-std=c99", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(root / SOURCE)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{shlex.join(cmd)}: {exc}"
    if done.returncode != 0:
        return f"{shlex.join(cmd)} failed:\n{done.stderr.strip()}"
    os.replace(tmp, out)  # a library being loaded by a running ingest is never half-written
    return None


class NativeScannerHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return  # the sdist ships the C source, not a library
        root = Path(self.root)
        problem = compile_scanner(root)
        if problem:
            self.app.display_warning("mailhygiene: the compiled Postfix scanner was not built; ingest will use "
                                     f"the numpy scanner (slower, same results). {problem}")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install loads it from the source tree
            build_data["force_include"][str(root / LIBRARY)] = str(LIBRARY)
