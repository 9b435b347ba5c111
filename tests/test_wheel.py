"""The release a stranger installs: the sdist and wheel build, pass `twine check`, hold what
they should (LICENSE included, no tests or docs tooling in the wheel), and the wheel, installed
(not editable) into a fresh venv, works there: tests/_wheel_smoke.py.

No network: the build runs without isolation (hatchling comes with the `docs` extra), and the
fresh venv takes its dependencies from this test venv's site-packages (a `.pth` line added
after the wheel is installed, so pip never sees this venv's editable ssenb).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import ssenb

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _run(*cmd: str, timeout: float = 180, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(  # type: ignore[call-overload]
        cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # `build` makes the sdist, then the wheel from the unpacked sdist: both must be complete
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT))
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_twine_check_passes(dist: Path) -> None:
    files = [str(p) for p in sorted(dist.iterdir())]
    assert len(files) == 2
    _run(sys.executable, "-m", "twine", "check", "--strict", *files)


def test_wheel_holds_the_package_its_license_and_its_metadata(dist: Path) -> None:
    wheel = _one(dist, f"ssenb-{ssenb.__version__}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = f"ssenb-{ssenb.__version__}.dist-info"
        metadata = zf.read(f"{info}/METADATA").decode()
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert f"{info}/licenses/LICENSE" in names
    assert {"ssenb/py.typed", "ssenb/__init__.py"} <= set(names)
    assert not [n for n in names if n.split("/")[0] not in ("ssenb", info)]  # no tests, docs, ...
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata
    assert "Requires-Python: >=3.11" in metadata
    for version in ("3.11", "3.12", "3.13"):
        assert f"Classifier: Programming Language :: Python :: {version}" in metadata
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert {"Documentation", "Source", "Changelog"} <= set(urls)
    assert all(f"Project-URL: {k}, {v}" in metadata for k, v in urls.items())
    assert "ssenb = ssenb._cli:main" in entry_points


def test_sdist_holds_license_changelog_and_sources(dist: Path) -> None:
    sdist = _one(dist, f"ssenb-{ssenb.__version__}.tar.gz")
    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "ssenb/__init__.py"} <= names
    assert not [n for n in names if n.startswith((".venv/", "site/", "build/", "test-artifacts/"))]


def test_wheel_installed_in_a_fresh_venv_works(dist: Path, tmp_path: Path) -> None:
    wheel = _one(dist, "*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # the wheel alone, from the file, nothing fetched: pip must not find ssenb installed
    _run(str(python), "-m", "pip", "install", "--no-index", "--no-deps", str(wheel), env=env)
    site = _run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                env=env).stdout.strip()  # fmt: skip
    # its dependencies: this venv's packages, after the fresh venv's own (the wheel wins)
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    Path(site, "zz_test_venv_packages.pth").write_text("".join(f"{p}\n" for p in ours))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    smoke = _run(str(python), str(ROOT / "tests" / "_wheel_smoke.py"), str(ROOT / "tests"),
                 str(scratch), cwd=scratch, env=env, timeout=240)  # fmt: skip
    assert smoke.stdout.count("ok: ") == 5, smoke.stdout
