"""A real IPython kernel for tests: start it, run code in it, read back what it printed."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager


@dataclass
class Reply:
    """What one execute request produced."""

    status: str
    stdout: str = ""
    stderr: str = ""
    result: str = ""  # text/plain of the execute_result
    error: dict[str, Any] = field(default_factory=dict)  # ename, evalue, traceback
    displays: list[dict[str, Any]] = field(default_factory=list)


class Kernel:
    """A thin synchronous driver over a jupyter_client kernel."""

    def __init__(self, km: KernelManager) -> None:
        self.km = km
        self.client = km.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60.0, cell_id: str | None = None) -> Reply:
        """Execute `code`; `cell_id` is sent in the request's metadata as JupyterLab does."""
        if cell_id is None:
            msg_id = self.client.execute(code)
        else:
            content = {"code": code, "silent": False, "store_history": True,
                       "user_expressions": {}, "allow_stdin": False}  # fmt: skip
            msg = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
            self.client.shell_channel.send(msg)
            msg_id = msg["header"]["msg_id"]
        reply = Reply(status="?")
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=timeout)
            except queue.Empty as exc:
                raise TimeoutError(f"no kernel output within {timeout} s for {code!r}") from exc
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    reply.stdout += content["text"]
                else:
                    reply.stderr += content["text"]
            elif kind == "execute_result":
                reply.result = content["data"].get("text/plain", "")
            elif kind in ("display_data", "update_display_data"):
                reply.displays.append(content["data"])
            elif kind == "error":
                reply.error = content
            elif kind == "status" and content["execution_state"] == "idle":
                break
        shell = self.client.get_shell_msg(timeout=timeout)
        while shell["parent_header"].get("msg_id") != msg_id:  # a reply left by an earlier run
            shell = self.client.get_shell_msg(timeout=timeout)
        reply.status = shell["content"]["status"]
        if reply.status == "error" and not reply.error:
            reply.error = shell["content"]  # UsageError: no iopub error, only stderr + reply
        return reply

    def ok(self, code: str, timeout: float = 60.0, cell_id: str | None = None) -> Reply:
        """Run `code` and fail the test with the kernel's traceback if it raised."""
        reply = self.run(code, timeout, cell_id)
        if reply.status != "ok":
            raise AssertionError("\n".join(reply.error.get("traceback", [])) or reply.error)
        return reply

    def value(self, expr: str) -> str:
        return self.ok(f"print({expr})").stdout.strip()


@contextmanager
def kernel(cwd: Path) -> Iterator[Kernel]:
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd))
    k = Kernel(km)
    k.run("%colors nocolor")
    try:
        yield k
    finally:
        k.client.stop_channels()
        km.shutdown_kernel(now=False)
