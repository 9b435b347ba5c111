"""Packaging promises: conda and pip list the same dependencies, CI runs the README's command,
the code stays small and lint-clean, and nothing applies nest_asyncio."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    req = req.split(";")[0].replace(" ", "")
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", req).groups()  # type: ignore[union-attr]
    return re.sub(r"[-_.]+", "-", name).lower() + spec


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = set(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs |= {r for r in extra if not r.startswith("ssenb[")}
    return {_norm(r) for r in reqs}


# conda-forge names that differ from PyPI's for the same package
CONDA_NAMES = {"redis-py": "redis", "python-build": "build"}


def _environment_requirements() -> set[str]:
    reqs: set[str] = set()
    text = (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]
    for line in text.splitlines():
        m = re.match(r"^\s+- (?!pip:)(\S+)\s*(#.*)?$", line)
        if (
            m
            and m.group(1) not in ("pip", "-e", ".")
            and not re.match(r"python([<>=!~]|$)|-e", m.group(1))  # the interpreter, not a package
        ):
            req = _norm(m.group(1))
            name = req.split(">")[0].split("=")[0].split("<")[0]
            reqs.add(CONDA_NAMES.get(name, name) + req[len(name) :])
    return reqs


def test_environment_yml_lists_the_same_dependencies_as_pyproject() -> None:
    assert _environment_requirements() == _pyproject_requirements()


def test_environment_yml_pins_the_python_pandas_needs() -> None:
    assert re.search(r"- python>=3\.1[1-9]", (ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_quick_start_has_exactly_two_commands_lab_and_tests() -> None:
    commands = _quick_start_commands()
    assert len(commands) == 2
    lab, tests = commands
    assert all("\n" not in c and "python3 -m venv .venv" in c for c in commands)
    assert lab.endswith(".venv/bin/jupyter lab --allow-root notebooks/")  # root and non-root
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert _quick_start_commands()[1] in ci.splitlines()
    assert "SSENB_REQUIRE_BROWSER=1" in ci
    assert "apt-get install -y" in ci
    assert "chromium" in ci


def test_typed_marker_ships() -> None:
    assert (ROOT / "ssenb" / "py.typed").exists()


SOURCES = sorted([*(ROOT / "ssenb").rglob("*.py"), *(ROOT / "tests").glob("*.py"),
                  *(ROOT / "bench").glob("*.py"), *(ROOT / "ssenb_docs").glob("*.py")])  # fmt: skip


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT)) for p in SOURCES])
def test_modules_stay_small_and_never_apply_nest_asyncio(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) < 400
    if path.name == "test_packaging.py":  # this very check spells the strings out
        return
    assert "import nest_asyncio" not in text  # prose may explain why it is not used
    assert "nest_asyncio.apply" not in text


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is part of the test extra and must be installed")
    proc = subprocess.run(
        [ruff, "check", "ssenb", "tests", "bench", "ssenb_docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_readme_lab_command_starts_as_root_and_answers_on_loopback(tmp_path: Path) -> None:
    """The first quick-start command's `jupyter lab ...` part, run as we are (root in CI and in
    containers), starts a server that answers on 127.0.0.1; it is then stopped."""
    lab = _quick_start_commands()[0].split("&&")[-1].split()
    assert lab[0] == ".venv/bin/jupyter"
    jupyter = Path(sys.executable).with_name("jupyter")  # this venv's, as .venv/bin's would be
    port, token = _free_port(), secrets.token_hex(16)
    command = [str(jupyter), *lab[1:], "--no-browser", f"--port={port}", "--port-retries=0",
               f"--IdentityProvider.token={token}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env |= {"JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}  # fmt: skip
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            status = None
            deadline = time.monotonic() + 60
            while status is None and proc.poll() is None and time.monotonic() < deadline:
                try:
                    status = httpx.get(
                        f"http://127.0.0.1:{port}/api/status",
                        headers={"Authorization": f"token {token}"},
                        timeout=2,
                    )
                except httpx.TransportError:
                    time.sleep(0.25)
            text = log.read_text(errors="replace")
            assert status is not None, f"no answer on port {port} (exit {proc.poll()}):\n{text}"
            assert status.status_code == 200, status.text
            assert "started" in status.json(), status.text
            lab_page = httpx.get(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10)
            assert lab_page.status_code == 200
            assert "JupyterLab" in lab_page.text
            assert "Running as root is not recommended" not in text
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    if os.geteuid() == 0:  # the case this guards: root used to stop before serving anything
        assert "allow-root" in " ".join(lab)
