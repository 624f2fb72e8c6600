"""The `serve`, `chat` and `bench` subcommands of powerinfer-py, run as real subprocesses."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("entry", [["-m", "powerinfer_py.server"], ["-m", "powerinfer_py.cli", "serve"]])
def test_serve_starts_and_reads_env(smollm2_path, entry, tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    port = _free_port()
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"n_ctx": 256, "model_alias": "from-file"}')
    proc = subprocess.Popen([sys.executable, *entry, "--model", str(smollm2_path), "--port", str(port),
                             "--config-file", str(cfg), "--log-level", "warning"],
                            cwd=ROOT, env=_env(POWERINFER_N_CTX="512", POWERINFER_HOST="127.0.0.1"))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server did not start"
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        model = httpx.get(base + "/v1/models").json()["data"][0]
        assert model["id"] == "from-file" and model["meta"]["n_ctx"] == 512  # env beats the file
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_chat_reads_piped_stdin(smollm2_path):
    out = subprocess.run([sys.executable, "-m", "powerinfer_py.cli", "chat", "-m", str(smollm2_path), "-n", "8",
                          "--temperature", "0", "-t", "2"], input="Hello!\n\n/reset\nName a colour.\n",
                         capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    replies = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert len(replies) >= 2, out.stdout  # one reply per user line (a reply may span lines)


def test_bench_prints_rates(smollm2_path):
    out = subprocess.run([sys.executable, "-m", "powerinfer_py.cli", "bench", "-m", str(smollm2_path), "-p", "16",
                          "-n", "4", "-r", "1", "-t", "2"], capture_output=True, text=True, cwd=ROOT, env=_env(),
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = {ln.split()[0]: float(ln.split()[1]) for ln in out.stdout.splitlines() if ln.strip().startswith(("pp", "tg"))}
    assert set(lines) == {"pp16", "tg4"} and all(v > 0 for v in lines.values())
