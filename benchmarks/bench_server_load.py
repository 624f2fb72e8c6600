"""Load test of the OpenAI-compatible server: N concurrent streaming clients for a fixed time.

Starts `python -m powerinfer_py.server` on 127.0.0.1 (a free port), then N client threads loop
until the duration is up (and at most --max-requests requests in all), each streaming completions
of its own prompt with temperature 0. Every streamed text is compared with the non-streamed answer
for the same prompt, fetched once before the run: a stream that got another client's tokens, or
lost some, shows as a mismatch. Prints requests/s, tokens/s and p50/p99 time to first token.

    POWERINFER_LIB_PATH=build python3 benchmarks/bench_server_load.py [--clients 4] [--duration 20]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["The first month of the year is", "A recipe for bread needs", "The ocean is", "My favourite animal is",
           "In the year 2000,", "The best way to learn is", "Mountains are", "A good book"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


def stream_once(client: httpx.Client, prompt: str, max_tokens: int):
    """(text, seconds to first token, seconds total, chunks) of one streamed completion."""
    start = time.perf_counter()
    ttft = None
    parts = []
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    with client.stream("POST", "/v1/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            text = json.loads(data)["choices"][0]["text"]
            if text and ttft is None:
                ttft = time.perf_counter() - start
            parts.append(text)
    return "".join(parts), ttft if ttft is not None else time.perf_counter() - start, \
        time.perf_counter() - start, len(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", help="GGUF model (default: SmolLM2-135M-Instruct from the asset cache)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ap.add_argument("--max-requests", type=int, default=400, help="stop after this many requests in all")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="server CPU threads")
    args = ap.parse_args()

    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT))
        from powerinfer_py import assets

        model = str(assets.smollm2_path())
    port = free_port()
    cmd = [sys.executable, "-m", "powerinfer_py.server", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning"]
    if args.threads:
        cmd += ["--n-threads", str(args.threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                print("server did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)

        prompts = PROMPTS[:max(args.clients, 1)] if args.clients <= len(PROMPTS) else \
            [PROMPTS[i % len(PROMPTS)] + f" (#{i})" for i in range(args.clients)]
        with httpx.Client(base_url=base, timeout=120) as c:
            expected = {p: c.post("/v1/completions", json={"prompt": p, "max_tokens": args.max_tokens,
                                                           "temperature": 0}).json()["choices"][0]["text"]
                        for p in set(prompts)}

        lock = threading.Lock()
        ttfts, totals, mismatches, errors = [], [], [], []
        n_chunks = [0]
        started = [0]
        stop_at = time.monotonic() + args.duration

        def client_loop(i: int) -> None:
            prompt = prompts[i]
            with httpx.Client(base_url=base, timeout=120) as c:
                while time.monotonic() < stop_at:
                    with lock:
                        if started[0] >= args.max_requests:
                            return
                        started[0] += 1
                    try:
                        text, ttft, total, chunks = stream_once(c, prompt, args.max_tokens)
                    except Exception as e:  # counted, never hidden
                        with lock:
                            errors.append(f"client {i}: {e!r}")
                        continue
                    with lock:
                        ttfts.append(ttft)
                        totals.append(total)
                        n_chunks[0] += chunks
                        if text != expected[prompt]:
                            mismatches.append((i, text, expected[prompt]))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.duration + 300)
        wall = time.perf_counter() - t0
        hung = sum(t.is_alive() for t in threads)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

    done = len(ttfts)
    print(f"clients {args.clients}, {wall:.1f} s, max_tokens {args.max_tokens}: {done} streams completed, "
          f"{len(errors)} errors, {len(mismatches)} mixed/wrong, {hung} hung")
    print(f"  {done / wall:.2f} requests/s, {n_chunks[0] / wall:.1f} streamed chunks/s")
    print(f"  time to first token p50 {percentile(ttfts, 50) * 1000:.0f} ms, "
          f"p99 {percentile(ttfts, 99) * 1000:.0f} ms; request p50 {percentile(totals, 50) * 1000:.0f} ms")
    for e in errors[:5]:
        print("  error:", e)
    for i, got, want in mismatches[:3]:
        print(f"  client {i} got {got!r}, expected {want!r}")
    ok = done > 0 and not errors and not mismatches and not hung
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
