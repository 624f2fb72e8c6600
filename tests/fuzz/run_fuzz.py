#!/usr/bin/env python3
"""Builds the GGUF fuzzer with AddressSanitizer + UBSan and runs it on SmolLM2's file.

    python3 tests/fuzz/run_fuzz.py [--cases 10000] [--jobs 2] [--chunk 500] [--seed-file F]
                                   [--build /tmp/build-fuzz-asan] [--rng 1] [--no-build] [--read-every 2]

The cases are split into chunks run by `fuzz_gguf` (vendor/powerinfer-core/tests/fuzz_gguf.cpp),
--jobs at a time. A sanitizer report or a crash ends that process: the case that caused it
(from the harness's --verbose line) is reported with the command that reproduces it, counted as
one crash, and the chunk resumes after it. Prints the per-mode outcomes and, last,
"cases=N crashes=M". Exit status 1 when any case crashed.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "vendor" / "powerinfer-core"


def smollm2_path() -> str:
    # Load the assets module by path: importing the package would load the library.
    spec = importlib.util.spec_from_file_location("pi_assets", ROOT / "powerinfer_py" / "assets.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(mod.smollm2_path())


def build(build_dir: str) -> str:
    subprocess.run(["cmake", "-S", str(CORE), "-B", build_dir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DPOWERINFER_BUILD_TESTS=ON", "-DPOWERINFER_SANITIZE=ON"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j2", "--target", "fuzz_gguf"], check=True)
    return os.path.join(build_dir, "tests", "fuzz_gguf")


def run_chunk(exe: str, seed_file: str, rng: int, n: int, workdir: str, read_every: int):
    """Runs cases [0, n) of one RNG stream, resuming after each crash. Returns (cases, crashes, text)."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=86:" + env.get("ASAN_OPTIONS", "")
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:" + env.get("UBSAN_OPTIONS", "")
    start, crashes, outputs, reports = 0, 0, [], []
    while start < n:
        cmd = [exe, seed_file, str(n), str(rng), "--start", str(start), "--verbose", "--workdir", workdir,
               "--read-every", str(read_every)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                             errors="replace")
        out, _ = p.communicate()
        for f in glob.glob(os.path.join(workdir, f"fuzz_gguf_{p.pid}*")):
            os.unlink(f)  # a crashed run leaves its work files
        if p.returncode == 0:
            outputs.append(out)
            break
        cases = re.findall(r"^case (\d+): (.*)$", out, re.M)
        if not cases:
            reports.append(f"rng {rng}: fuzz_gguf failed before any case (rc={p.returncode}):\n{out[-3000:]}")
            return 0, 1, "", reports
        k, desc = int(cases[-1][0]), cases[-1][1]
        crashes += 1
        reports.append(f"CRASH rng {rng} case {k} ({desc}), rc={p.returncode}; reproduce with:\n"
                       f"  {exe} {seed_file} {n} {rng} --only {k}\n" + out[out.rfind(f'case {k}:'):][-4000:])
        outputs.append(out)
        start = k + 1
    return n, crashes, "".join(outputs), reports


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rng", type=int, default=1, help="first RNG stream; chunk i uses rng + i")
    ap.add_argument("--seed-file", default=None)
    ap.add_argument("--build", default="/tmp/build-fuzz-asan")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--read-every", type=int, default=2, help="full load without mmap every N cases")
    ap.add_argument("--workdir", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp")
    args = ap.parse_args()

    seed_file = args.seed_file or smollm2_path()
    exe = os.path.join(args.build, "tests", "fuzz_gguf") if args.no_build else build(args.build)
    sizes = [min(args.chunk, args.cases - i) for i in range(0, args.cases, args.chunk)]
    t0 = time.time()
    totals: dict[str, Counter] = {}
    cases = crashes = 0
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_chunk, exe, seed_file, args.rng + i, n, args.workdir, args.read_every) for i, n in enumerate(sizes)]
        for fut in futures:
            n, c, out, reports = fut.result()
            cases += n
            crashes += c
            for r in reports:
                print(r, flush=True)
            for line in out.splitlines():
                m = re.match(r"^(reader \(no data\)|pi_model_load \w+)\s+(.*)$", line)
                if m:
                    tally = totals.setdefault(m.group(1), Counter())
                    for k, v in re.findall(r"(\w+)=(\d+)", m.group(2)):
                        tally[k] += int(v)
            print(f"  {cases}/{args.cases} cases, {crashes} crashes, {time.time() - t0:.0f} s", flush=True)
    print(f"seed file: {seed_file}; sanitizers: address, undefined; {time.time() - t0:.0f} s")
    for name, tally in totals.items():
        print(f"{name:22s} " + " ".join(f"{k}={v}" for k, v in tally.items()))
    print(f"cases={cases} crashes={crashes}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
