"""`python -m ssenb_docs`: execute the tutorials, then `mkdocs build --strict`.

Options: `--site-dir DIR` (default site/), `--executed-dir DIR` (default
build/docs/executed/), `--reuse` (keep executed copies whose notebook did not change: for
editing prose; a normal build runs every tutorial again, since its outputs depend on the
package too), `--allow-errors` (drafts only: a failing cell shows its traceback on the page
instead of failing the build). Any warning fails the build: a broken link, a missing page,
an unresolved API reference, a tutorial cell that raises.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from . import EXECUTED, NOTEBOOKS, ROOT, SITE
from ._execute import execute_all


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ssenb_docs", description=__doc__)
    parser.add_argument("--site-dir", type=Path, default=SITE, help="output folder (site/)")
    parser.add_argument(
        "--executed-dir", type=Path, default=EXECUTED, help="executed notebooks' folder"
    )
    parser.add_argument("--reuse", action="store_true", help="skip unchanged executed notebooks")
    parser.add_argument(
        "--allow-errors", action="store_true", help="drafts only: show failing cells' tracebacks"
    )
    args = parser.parse_args(argv)
    notebooks = NOTEBOOKS.glob("[0-9]*.ipynb")
    execute_all(notebooks, args.executed_dir, reuse=args.reuse, allow_errors=args.allow_errors)
    env = os.environ | {"SSENB_DOCS_EXECUTED": str(args.executed_dir.resolve())}
    config = str(ROOT / "mkdocs.yml")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", config,
               "--site-dir", str(args.site_dir)]  # fmt: skip
    code = subprocess.run(command, cwd=ROOT, env=env, check=False).returncode
    if code == 0:
        index = (args.site_dir / "index.html").resolve()
        print(f"ssenb_docs: site built; open {index} (works offline)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
