"""The whole speed table of issue 9: powerinfer_py beside llama-cpp-python (the peer) on this machine.

    POWERINFER_LIB_PATH=build python3 benchmarks/bench_speed_report.py --runs 5 [--json out.json]

Sections (every "ours vs peer" figure is a median of --runs runs, alternating the engines, each run
in a fresh child process; see bench_decode.py for what one run measures; the peer maps the file,
ours reads the weights into 2 MB pages, use_mmap=False, unless --ours-mmap):
  1. SmolLM2-135M-Instruct Q4_1 at 2 and 1 threads: prefill of a 512-token prompt and decode tok/s,
     peak RSS.
  2. The same model re-quantized by our own tool (powerinfer_py.quantize) from that Q4_1 file to
     Q4_0, Q8_0 and Q4_K, written once into <assets>/requant/: both engines read the same files.
     Sections 1 and 2 at 2 threads run interleaved: each run takes every file in turn, each engine
     in turn.
  3. Decode against the memory-bandwidth limit. Bandwidth: the best of (a) numpy float32 sums over a
     1 GiB array split across the threads (numpy drops the GIL in the reduction) and (b) our public
     pi_matvec over an F32 matrix of 1 GiB, rows split across the threads; each the best of 5 passes,
     at 2 threads and at 1 (the highest figure of the four is the limit).
     Bytes per decoded token: every weight tensor's n_bytes once, except the token embedding of
     which one row is read, plus the output head (the tied embedding read in full when there is no
     output.weight), plus the KV cache the attention reads: at the mean position of the timed
     decode (prompt + gen / 2), K and V of every layer, n_head_kv x head_dim values each, in f16
     (both engines' default; 13% of the weights' bytes for SmolLM2 after a 512-token prompt).
     Activations are left out. fraction = decode tok/s x bytes/token / bandwidth; the table shows
     it also for the weights alone (the figure earlier notes quoted).
  4. Model load time (construct the model object, mmap on, after the import, in a fresh process;
     ours: powerinfer_py._model.Model, peer: llama_cpp.llama_model_load_from_file); ours also with
     use_mmap=False (the weights read into memory, as sections 1-3 run it).
  5. Through the Python API: Llama.create_completion(stream=True, temperature=0, max_tokens=128,
     end-of-generation tokens biased away) tokens/s against the raw loop over the same Llama's
     Context (decode one token, argmax of the logits) in the same process, same prompt; both timed
     from the call to the last token, prompt included.
Before each timed run the script waits (up to --quiet-wait s) until other work keeps the CPUs at
most --quiet busy: llama.cpp's threads spin while waiting for each other, so a peer run sharing a
core with another process loses far more than ours would. The 1-minute load average seen at the
start of the runs is printed beside each figure (our own 2-thread runs alone raise it toward 2).
"""
from __future__ import annotations

import os

# numpy's OpenBLAS threads spin for a while after each BLAS call; on a 2-core machine they take
# a core from the engine being timed (seen as 17% of the samples in a profile). One is enough here.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_decode import PEER_PY, ROOT, run_child  # noqa: E402

REQUANT_TYPES = ("Q4_0", "Q8_0", "Q4_K")


def load1() -> float:
    return os.getloadavg()[0]


def _cpu_busy(interval: float = 0.5) -> float:
    """Fraction of all CPUs busy over the interval, from /proc/stat (0 where it cannot be read)."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = snap()
        time.sleep(interval)
        t1, i1 = snap()
    except OSError:
        return 0.0
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


QUIET = {"max_busy": 1.0, "timeout": 0.0}  # set from --quiet / --quiet-wait


def wait_quiet() -> float:
    """Before a timed child: waits (up to QUIET['timeout'] s) until other work keeps the CPUs at most
    QUIET['max_busy'] busy; returns the busy fraction last seen. llama.cpp's worker threads spin
    while they wait for each other, so a peer run that shares a core with another process is slowed
    far more than ours: measuring only on a quiet machine keeps the comparison fair to the peer."""
    t_end = time.monotonic() + QUIET["timeout"]
    while True:
        busy = _cpu_busy()
        if busy <= QUIET["max_busy"] or time.monotonic() >= t_end:
            return busy


def medians(models: list, threads: int, runs: int, peer_py: str, n_prompt: int, n_gen: int,
            ours_mmap: bool) -> list:
    """Medians of runs of bench_decode's child for both engines on each model, plus the load seen.
    Run i takes every model in turn, each engine in turn, so that a slow stretch of this shared
    machine falls on all models and both engines alike instead of on whichever section ran then."""
    n_ctx = n_prompt + n_gen + 16
    res = [{"ours": [], "peer": []} for _ in models]
    loads = [[] for _ in models]
    busys = [[] for _ in models]
    for i in range(runs):
        for j, model in enumerate(models):
            for engine, py in (("ours", sys.executable), ("peer", peer_py)):
                busys[j].append(wait_quiet())
                loads[j].append(load1())
                r = run_child(py, engine, model, threads, n_prompt, n_gen, n_ctx, engine == "peer" or ours_mmap)
                res[j][engine].append(r)
                print(f"  {Path(model).name} {threads}T run {i + 1}/{runs} {engine:4s}: prefill "
                      f"{r['prefill_tps']:7.1f}  decode {r['decode_tps']:6.1f}  RSS {r['peak_rss_mb']:6.1f} MB"
                      f"  (load {loads[j][-1]:.1f}, CPUs busy before {busys[j][-1] * 100:.0f}%)", file=sys.stderr)
    out = []
    for j, model in enumerate(models):
        med = {e: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for e, rs in res[j].items()}
        out.append({"model": Path(model).name, "threads": threads, "runs": res[j], "median": med,
                    "ratio": {k: med["ours"][k] / med["peer"][k] for k in med["ours"]},
                    "load_avg": [min(loads[j]), max(loads[j])], "busy_before": [min(busys[j]), max(busys[j])]})
    return out


def requantized(src: Path, cache: Path) -> dict:
    """Our tool's Q4_0 / Q8_0 / Q4_K copies of src, made once (written to a temp name, then renamed)."""
    from powerinfer_py.quantize import quantize

    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for t in REQUANT_TYPES:
        dst = cache / f"{src.stem}.requant-{t}.gguf"
        if not dst.is_file():
            tmp = dst.with_suffix(".tmp")
            print(f"  quantizing {src.name} -> {dst.name}", file=sys.stderr)
            quantize(src, tmp, t)
            os.replace(tmp, dst)
        out[t] = dst
    return out


def bytes_per_token(model_path: str, kv_positions: float = 0.0) -> dict:
    """Bytes one decode step reads: the weights, from the tensor table, and ("kv") the f16 KV cache
    of kv_positions earlier tokens."""
    from powerinfer_py._model import Model

    with Model(model_path) as m:
        tensors = m.tensors
        meta = m.metadata
    arch = meta["general.architecture"]
    n_layer = int(meta[f"{arch}.block_count"])
    n_head = int(meta[f"{arch}.attention.head_count"])
    n_head_kv = int(meta.get(f"{arch}.attention.head_count_kv", n_head))
    head_dim = int(meta.get(f"{arch}.attention.key_length", int(meta[f"{arch}.embedding_length"]) // n_head))
    kv = int(round(kv_positions * n_layer * 2 * n_head_kv * head_dim * 2))
    by_name = {t.name: t for t in tensors}
    emb = by_name["token_embd.weight"]
    n_vocab = emb.shape[1]
    total = sum(t.n_bytes for t in tensors if t.name not in ("token_embd.weight", "output.weight"))
    total += emb.n_bytes // n_vocab  # the one embedding row looked up
    head = by_name.get("output.weight", emb)
    total += head.n_bytes  # the output head, every row
    return {"bytes": total + kv, "weights": total, "kv": kv, "tied_head": "output.weight" not in by_name}


def _split_run(n_threads: int, fn) -> float:
    """Runs fn(i) on n_threads threads at once; seconds of wall time."""
    ths = [threading.Thread(target=fn, args=(i,)) for i in range(n_threads)]
    t0 = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return time.perf_counter() - t0


def bandwidth(n_threads: int, n_bytes: int = 1 << 30, passes: int = 5) -> dict:
    """Read bandwidth in bytes/s: best pass of numpy sums and of pi_matvec on F32, threads splitting the work."""
    from powerinfer_py._lib import ffi, lib

    a = np.ones(n_bytes // 4, dtype=np.float32)  # written once, so every page is resident
    parts = np.array_split(a, n_threads)
    sink = [0.0] * n_threads

    def np_part(i):
        sink[i] = float(parts[i].sum())

    best_np = min(_split_run(n_threads, np_part) for _ in range(passes))

    n_cols = 4096
    n_rows = a.size // n_cols
    W = a[: n_rows * n_cols].reshape(n_rows, n_cols)
    x = np.ones(n_cols, dtype=np.float32)
    y = np.empty(n_rows, dtype=np.float32)
    bounds = np.linspace(0, n_rows, n_threads + 1).astype(int)
    F32 = 0  # GGUF type id of F32

    def mv_part(i):
        r0, r1 = int(bounds[i]), int(bounds[i + 1])
        st = lib.pi_matvec(F32, ffi.cast("void *", W[r0:r1].ctypes.data), r1 - r0, n_cols,
                           ffi.cast("float *", x.ctypes.data), ffi.cast("float *", y[r0:r1].ctypes.data))
        if st != 0:
            raise RuntimeError(f"pi_matvec returned {st}")

    best_mv = min(_split_run(n_threads, mv_part) for _ in range(passes))
    if not np.allclose(y, n_cols):
        raise RuntimeError("pi_matvec probe gave wrong sums")
    bw_np, bw_mv = n_bytes / best_np, n_rows * n_cols * 4 / best_mv
    return {"numpy_sum": bw_np, "pi_matvec_f32": bw_mv, "best": max(bw_np, bw_mv), "threads": n_threads,
            "load_avg": load1()}


LOAD_CHILD = r"""
import json, sys, time
engine, path = sys.argv[1], sys.argv[2]
if engine in ("ours", "ours-read"):
    from powerinfer_py._model import Model
    t0 = time.perf_counter(); m = Model(path, use_mmap=engine == "ours"); dt = time.perf_counter() - t0
    m.close()
else:
    import llama_cpp
    quiet = llama_cpp.llama_log_callback(lambda *a: None)  # kept referenced: the C side calls it later
    llama_cpp.llama_log_set(quiet, None)
    p = llama_cpp.llama_model_default_params(); p.use_mmap = True
    t0 = time.perf_counter(); m = llama_cpp.llama_model_load_from_file(path.encode(), p); dt = time.perf_counter() - t0
    assert m, "load failed"
    llama_cpp.llama_model_free(m)
print(json.dumps({"load_s": dt}))
"""


def load_times(model: str, runs: int, peer_py: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    res = {"ours": [], "peer": [], "ours-read": []}
    for _ in range(runs):
        for engine, py in (("ours", sys.executable), ("peer", peer_py), ("ours-read", sys.executable)):
            wait_quiet()
            r = subprocess.run([py, "-c", LOAD_CHILD, engine, model], capture_output=True, text=True,
                               env=env, cwd=str(ROOT), timeout=300)
            if r.returncode != 0:
                raise RuntimeError(f"{engine} load failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
            res[engine].append(json.loads(r.stdout.strip().splitlines()[-1])["load_s"])
    med = {e: statistics.median(v) for e, v in res.items()}
    return {"runs": res, "median": med, "ratio": med["ours"] / med["peer"],
            "ratio_read": med["ours-read"] / med["peer"], "load_avg": load1()}


def api_vs_raw(model: str, threads: int, runs: int, n_gen: int) -> dict:
    """create_completion(stream=True) tokens/s against the raw Context loop, same Llama, same prompt."""
    from powerinfer_py import Llama

    llm = Llama(model_path=model, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    prompt = "Once upon a time, in a quiet village,"
    ids = llm.tokenize(prompt.encode())
    bias = {t: -100.0 for t in range(llm.n_vocab()) if llm.is_eog(t)}
    ctx = llm._ctx

    def api_run():
        llm.reset()
        n = 0
        t0 = time.perf_counter()
        for _chunk in llm.create_completion(prompt, max_tokens=n_gen, temperature=0.0, stream=True,
                                            logit_bias=bias):
            n += 1
        dt = time.perf_counter() - t0
        return n, dt

    def raw_run():
        llm.reset()
        ctx.kv_truncate(0)
        t0 = time.perf_counter()
        ctx.decode(ids)
        tok = int(np.argmax(ctx.logits()))
        for _ in range(n_gen - 1):  # n_gen tokens out: the first comes from the prompt's logits
            ctx.decode([tok])
            tok = int(np.argmax(ctx.logits()))
        return n_gen, time.perf_counter() - t0

    api_run(), raw_run()  # warm-up
    wait_quiet()
    api, raw, chunks = [], [], []
    for _ in range(runs):
        n, dt = api_run()
        chunks.append(n)
        api.append(n_gen / dt)
        n, dt = raw_run()
        raw.append(n / dt)
    med_api, med_raw = statistics.median(api), statistics.median(raw)
    return {"api_tps": api, "raw_tps": raw, "stream_chunks": chunks, "median_api": med_api,
            "median_raw": med_raw, "ratio": med_api / med_raw, "load_avg": load1()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="GGUF file (default: the cached SmolLM2 Q4_1)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--peer-python", default=str(PEER_PY))
    ap.add_argument("--json", default=None, help="also write every run here")
    ap.add_argument("--quiet", type=float, default=0.2,
                    help="before each timed run wait until the CPUs are at most this busy (fraction)")
    ap.add_argument("--quiet-wait", type=float, default=60.0, help="longest wait for that, seconds")
    ap.add_argument("--ours-mmap", action="store_true", help="ours maps the file too in sections 1-3")
    args = ap.parse_args()
    QUIET.update(max_busy=args.quiet, timeout=args.quiet_wait)

    from powerinfer_py import assets

    model = Path(args.model) if args.model else Path(assets.smollm2_path())
    if not Path(args.peer_python).is_file():
        sys.exit(f"peer interpreter {args.peer_python} not found: run benchmarks/setup_peer.sh")
    cache = Path(os.environ.get("POWERINFER_ASSETS", Path.home() / ".cache" / "powerinfer-py" / "assets")) / "requant"
    req = requantized(model, cache)

    out = {"machine": {"cpus": os.cpu_count(), "start_load_avg": os.getloadavg()}}
    print("[1/5] base model and re-quantized models, 2 threads, interleaved", file=sys.stderr)
    two = medians([str(model)] + [str(p) for p in req.values()], 2, args.runs, args.peer_python, args.prompt,
                  args.gen, args.ours_mmap)
    print("[2/5] base model, 1 thread", file=sys.stderr)
    one = medians([str(model)], 1, args.runs, args.peer_python, args.prompt, args.gen, args.ours_mmap)
    out["base"] = [two[0], one[0]]
    out["requant"] = dict(zip(req.keys(), two[1:]))
    print("[3/5] bandwidth probe", file=sys.stderr)
    wait_quiet()
    bw2 = bandwidth(2)
    wait_quiet()
    bw1 = bandwidth(1)
    # The limit is the highest rate any probe reached (a busy core only lowers a probe, so the
    # highest is the most honest denominator).
    bw = dict(bw2, best=max(bw2["best"], bw1["best"]), one_thread=bw1)
    out["bandwidth"] = bw
    kv_pos = args.prompt + args.gen / 2
    bpt_all = {"Q4_1": bytes_per_token(str(model), kv_pos)}
    bpt_all.update({t: bytes_per_token(str(p), kv_pos) for t, p in req.items()})
    bpt = {t: b["bytes"] for t, b in bpt_all.items()}
    out["bytes_per_token"] = bpt_all
    print("[4/5] load time", file=sys.stderr)
    out["load"] = load_times(str(model), args.runs, args.peer_python)
    print("[5/5] Python API vs raw loop", file=sys.stderr)
    out["api"] = api_vs_raw(str(model), 2, args.runs, args.gen)

    # The table.
    def la(x):
        return f"{x[0]:.1f}-{x[1]:.1f}" if isinstance(x, list) else f"{x:.1f}"

    rows = []
    for b in out["base"]:
        m, r = b["median"], b["ratio"]
        for k, label in (("prefill_tps", "prefill 512 tok/s"), ("decode_tps", "decode tok/s")):
            rows.append((f"Q4_1 {b['threads']}T {label}", m["ours"][k], m["peer"][k], r[k], la(b["load_avg"])))
    for t, b in out["requant"].items():
        m, r = b["median"], b["ratio"]
        for k, label in (("prefill_tps", "prefill 512 tok/s"), ("decode_tps", "decode tok/s")):
            rows.append((f"{t} (ours-quantized) 2T {label}", m["ours"][k], m["peer"][k], r[k], la(b["load_avg"])))
    b = out["base"][0]
    rows.append(("Q4_1 2T peak RSS MB", b["median"]["ours"]["peak_rss_mb"], b["median"]["peer"]["peak_rss_mb"],
                 b["ratio"]["peak_rss_mb"], la(b["load_avg"])))
    ld = out["load"]
    rows.append(("Q4_1 model load ms", ld["median"]["ours"] * 1e3, ld["median"]["peer"] * 1e3, ld["ratio"],
                 la(ld["load_avg"])))
    rows.append(("Q4_1 model load ms, ours use_mmap=False", ld["median"]["ours-read"] * 1e3, ld["median"]["peer"] * 1e3,
                 ld["ratio_read"], la(ld["load_avg"])))

    print(f"\nmodel {model.name} (+ re-quantized copies), prompt {args.prompt}, decode {args.gen}, "
          f"medians of {args.runs} alternating runs, {os.cpu_count()} CPUs; the peer maps the file, ours "
          f"{'maps it too' if args.ours_mmap else 'reads the weights into memory (use_mmap=False)'}")
    print(f"| {'measure':44s} | {'ours':>9s} | {'llama.cpp':>9s} | {'ratio':>6s} | {'load avg':>8s} |")
    print(f"|{'-' * 46}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 10}|")
    for name, o, p, r, l in rows:
        print(f"| {name:44s} | {o:9.1f} | {p:9.1f} | {r:6.2f} | {l:>8s} |")

    b1 = bw["one_thread"]
    print(f"\nbandwidth probe, 1 GiB f32, best of 5: 2 threads numpy sum {bw['numpy_sum'] / 1e9:.1f} GB/s, "
          f"pi_matvec F32 {bw['pi_matvec_f32'] / 1e9:.1f} GB/s; 1 thread {b1['numpy_sum'] / 1e9:.1f} / "
          f"{b1['pi_matvec_f32'] / 1e9:.1f} GB/s -> limit {bw['best'] / 1e9:.1f} GB/s (load avg {bw['load_avg']:.1f})")
    print(f"| {'decode, 2 threads':22s} | {'MB/token':>8s} | {'ours tok/s':>10s} | {'ours % BW':>9s} | "
          f"{'peer tok/s':>10s} | {'peer % BW':>9s} | {'ours, weights only':>18s} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 12}|{'-' * 11}|{'-' * 12}|{'-' * 11}|{'-' * 20}|")
    frac = {}
    for t, b in [("Q4_1", out["base"][0])] + list(out["requant"].items()):
        d_o, d_p = b["median"]["ours"]["decode_tps"], b["median"]["peer"]["decode_tps"]
        fo, fp = d_o * bpt[t] / bw["best"], d_p * bpt[t] / bw["best"]
        fw = d_o * bpt_all[t]["weights"] / bw["best"]
        frac[t] = {"ours": fo, "peer": fp, "ours_weights_only": fw}
        print(f"| {t:22s} | {bpt[t] / 1e6:8.1f} | {d_o:10.1f} | {fo * 100:8.1f}% | {d_p:10.1f} | {fp * 100:8.1f}% | "
              f"{fw * 100:17.1f}% |")
    out["bandwidth_fraction"] = frac

    a = out["api"]
    print(f"\nPython API, Q4_1 2T, {args.gen} tokens: create_completion(stream=True) {a['median_api']:.1f} tok/s, "
          f"raw Context decode+argmax loop {a['median_raw']:.1f} tok/s, ratio {a['ratio'] * 100:.1f}% "
          f"(stream chunks {a['stream_chunks']}, load avg {a['load_avg']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
