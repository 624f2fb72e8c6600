"""powerinfer_py.tools.place: budget accounting, the solvers against each other and against brute
force, PowerInfer's .generated.gpuidx round trip, bad input, the plot."""
from __future__ import annotations

import itertools
import json
import struct

import gguf
import numpy as np
import pytest

from powerinfer_py.sparse_gguf import write_sparse_gguf
from powerinfer_py.tools import gpuidx as G
from powerinfer_py.tools import place as P
from powerinfer_py.tools.activation_profile import load_activation_dir, load_profile_npz

from tiny_llama import write_tiny_llama

N_EMBD, N_FF, N_LAYER = 64, 512, 3


def type_row_bytes(type_name: str, n_values: int) -> int:
    """Bytes of n_values of a type, from the gguf package's table (independent of the module)."""
    block, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]
    return -(-n_values // block) * block_bytes


def zipf_profile(path, n_layer=N_LAYER, n_ff=N_FF, n_tokens=1000, seed=0):
    """Skewed counts like a ReLU model's: a few hot neurons, a long cold tail."""
    rng = np.random.default_rng(seed)
    counts = {f"counts_{l}": np.minimum(rng.zipf(1.3, n_ff), n_tokens).astype(np.int64) for l in range(n_layer)}
    np.savez(path, n_layer=np.int64(n_layer), n_ff=np.int64(n_ff), n_tokens=np.int64(n_tokens),
             model="synthetic", corpus="zipf", **counts)
    return path


@pytest.fixture(scope="module")
def sparse_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("place")
    spec = write_sparse_gguf(d / "m.powerinfer.gguf", arch="llama", wtype="Q4_0", n_embd=N_EMBD, n_ff=N_FF,
                             n_layer=N_LAYER)
    return spec, zipf_profile(d / "act.npz")


def fixed_bytes_of(spec) -> int:
    """Every non-FFN tensor but token_embd, from the spec's types and shapes."""
    total = 0
    for name in spec.order:
        if name == "token_embd.weight" or any(s in name for s in ("ffn_up.", "ffn_gate.", "ffn_down_t.")):
            continue
        values = spec.weights[name]
        rows = 1 if values.ndim == 1 else values.shape[0]
        total += rows * type_row_bytes(spec.types[name], values.shape[-1])
    return total


# -- sizes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("12GiB", 12 << 30), ("512MiB", 512 << 20), ("1.5GB", 1_500_000_000), ("4096", 4096),
    (4096, 4096), ("8g", 8 << 30), (" 2 KiB ", 2048), ("1e3", 1000)])
def test_parse_size(text, expected):
    assert P.parse_size(text) == expected


@pytest.mark.parametrize("text", ["twelve", "12 parsecs", "", "-1GiB", "1.2.3GB"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError, match="size"):
        P.parse_size(text)


# -- model facts and budget ----------------------------------------------------------------------

def test_sparse_model_accounting(sparse_model):
    spec, _ = sparse_model
    facts = P.read_model_facts(spec.path)
    assert (facts.n_layer, facts.n_embd, facts.n_ff, facts.has_gate) == (N_LAYER, N_EMBD, [N_FF] * N_LAYER, True)
    # one row of up, gate and down_t each, n_embd Q4_0 values per row
    assert facts.neuron_bytes == [3 * type_row_bytes("Q4_0", N_EMBD)] * N_LAYER
    assert sum(facts.fixed_bytes.values()) == fixed_bytes_of(spec)
    assert facts.fixed_bytes["predictors"] == sum(
        spec.weights[n].shape[0] * type_row_bytes(spec.types[n], spec.weights[n].shape[1])
        for n in spec.order if ".fc" in n)
    hd = N_EMBD // spec.n_head
    assert P.kv_cache_bytes(facts, 100) == 2 * N_LAYER * 100 * spec.n_head_kv * hd * 2


def test_dense_tied_model_accounting(tmp_path):
    path = write_tiny_llama(tmp_path / "dense.gguf", tied=True, n_embd=64, n_head=4, n_head_kv=2, n_ff=96,
                            n_layer=2, n_vocab=200)
    facts = P.read_model_facts(path)
    assert facts.neuron_bytes == [3 * 64 * 4] * 2        # F32 up and gate rows, a column of ffn_down
    assert facts.tied_output
    assert facts.fixed_bytes["output"] == 64 * 4 + 200 * 64 * 4   # output_norm + token_embd as the head
    assert P.kv_cache_bytes(facts, 32) == 2 * 2 * 32 * 2 * 16 * 2   # GQA: 2 KV heads of 16


def test_budget_shortfall_is_reported(sparse_model):
    spec, _ = sparse_model
    facts = P.read_model_facts(spec.path)
    fixed = fixed_bytes_of(spec)
    with pytest.raises(ValueError, match=r"is \d+ bytes .* short") as e:
        P.plan_budget(facts, fixed, n_ctx=16, batch=1, margin=0)
    kv, compute = P.kv_cache_bytes(facts, 16), P.compute_buffer_bytes(facts, 16, 1)
    assert f"is {kv + compute} bytes" in str(e.value)
    budget = P.plan_budget(facts, fixed + kv + compute + 1000, n_ctx=16, batch=1, margin=0)
    assert budget.ffn == 1000


# -- solvers -------------------------------------------------------------------------------------

def random_problem(rng, n_layer, n_ff, chunk, equal_bytes, fraction):
    counts = [np.sort(np.minimum(rng.zipf(rng.uniform(1.2, 2.0), n_ff), 10_000).astype(float))[::-1]
              for _ in range(n_layer)]
    neuron_bytes = [96] * n_layer if equal_bytes else list(rng.choice([36, 60, 96, 108], n_layer))
    total = sum(n_ff * b for b in neuron_bytes)
    return P.PlacementProblem(counts, neuron_bytes, chunk, int(total * fraction))


def brute_force(problem):
    best = 0.0
    for choice in itertools.product(*[range(len(s)) for s in problem.sizes]):
        ks = [problem.sizes[l][j] for l, j in enumerate(choice)]
        if problem.bytes_of(ks) <= problem.budget:
            best = max(best, problem.value_of(ks))
    return best


def check_feasible(problem, ks):
    assert problem.bytes_of(ks) <= problem.budget
    for k, counts in zip(ks, problem.sorted_counts):
        assert k % problem.chunk == 0 or k == len(counts)


@pytest.mark.parametrize("seed", range(6))
def test_milp_equals_dp_and_greedy_with_equal_bytes(seed):
    rng = np.random.default_rng(seed)
    problem = random_problem(rng, n_layer=int(rng.integers(2, 6)), n_ff=256, chunk=int(rng.choice([1, 32, 64])),
                             equal_bytes=True, fraction=rng.uniform(0.05, 0.9))
    milp, dp, greedy = P.solve_milp(problem), P.solve_dp(problem), P.solve_greedy(problem)
    assert milp.optimal and dp.optimal and greedy.optimal  # greedy is exact: every chunk costs the same
    for s in (milp, dp, greedy):
        check_feasible(problem, s.ks)
    assert problem.value_of(milp.ks) == pytest.approx(problem.value_of(dp.ks), rel=1e-12)
    assert problem.value_of(greedy.ks) == pytest.approx(problem.value_of(dp.ks), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_milp_equals_dp_equals_brute_force_with_unequal_bytes(seed):
    rng = np.random.default_rng(100 + seed)
    # n_ff not a multiple of chunk: the last step of each layer is a partial chunk
    problem = random_problem(rng, n_layer=3, n_ff=200, chunk=48, equal_bytes=False, fraction=rng.uniform(0.1, 0.8))
    milp, dp, greedy = P.solve_milp(problem), P.solve_dp(problem), P.solve_greedy(problem)
    for s in (milp, dp, greedy):
        check_feasible(problem, s.ks)
    best = brute_force(problem)
    assert problem.value_of(milp.ks) == pytest.approx(best, rel=1e-12)
    assert problem.value_of(dp.ks) == pytest.approx(best, rel=1e-12)
    assert problem.value_of(greedy.ks) <= best + 1e-9


def test_more_budget_never_fewer_neurons():
    rng = np.random.default_rng(7)
    base = random_problem(rng, n_layer=4, n_ff=256, chunk=32, equal_bytes=True, fraction=1.0)
    last_value, last_count = -1.0, -1
    for fraction in np.linspace(0, 1, 9):
        problem = P.PlacementProblem(base.sorted_counts, base.neuron_bytes, 32, int(base.budget * fraction))
        ks = P.solve_milp(problem).ks
        check_feasible(problem, ks)
        assert problem.value_of(ks) >= last_value and sum(ks) >= last_count
        last_value, last_count = problem.value_of(ks), sum(ks)
    assert last_count == 4 * 256  # the whole budget holds every neuron


def test_powerinfer_rule():
    # facts §2: slice = n_ff * bytes per element of ffn_up; x4.5 with a gate, x2 without; cap = floor(B/..)*4
    assert P.powerinfer_neuron_cap(13824 * 2, True, 10 << 30) == (10 << 30) // int(13824 * 2 * 4.5) * 4
    assert P.powerinfer_neuron_cap(1000, False, 10_000) == 20
    rng = np.random.default_rng(3)
    problem = random_problem(rng, n_layer=3, n_ff=512, chunk=256, equal_bytes=True, fraction=1.0)
    ks = P.solve_powerinfer(problem, neuron_cap=600).ks
    assert sum(ks) == 512 and all(k % 256 == 0 for k in ks)  # two whole chunks fit under 600
    chunk_values = sorted((c[i:i + 256].sum() for c in problem.sorted_counts for i in (0, 256)), reverse=True)
    assert problem.value_of(ks) == pytest.approx(sum(chunk_values[:2]))  # the two hottest chunks


# -- end to end: place, gpuidx -------------------------------------------------------------------

def run_place(sparse_model, tmp_path, extra_budget, **kw):
    spec, profile_path = sparse_model
    facts = P.read_model_facts(spec.path)
    n_ctx, batch = 64, 4
    base = fixed_bytes_of(spec) + P.kv_cache_bytes(facts, n_ctx) + P.compute_buffer_bytes(facts, n_ctx, batch)
    out = tmp_path / f"m{extra_budget}.generated.gpuidx"
    report = P.place(spec.path, load_profile_npz(profile_path), base + extra_budget, n_ctx=n_ctx, batch=batch,
                     margin=0, out=out, **kw)
    return report, out


def test_place_respects_budget_and_grows_with_it(sparse_model, tmp_path):
    neuron = 3 * type_row_bytes("Q4_0", N_EMBD)
    counts = []
    last = -1
    for extra in (0, 100 * neuron, 300 * neuron, 700 * neuron, 2000 * neuron):
        report, _ = run_place(sparse_model, tmp_path, extra, chunk=32)
        ks = [r["gpu_neurons"] for r in report["layers"]]
        assert sum(ks) * neuron <= extra                       # recomputed independently
        assert report["budget"]["ffn"] == extra
        assert all(k % 32 == 0 or k == N_FF for k in ks)
        assert sum(ks) >= last
        last = sum(ks)
        counts.append(sum(ks))
    assert counts[0] == 0 and counts[-1] == N_LAYER * N_FF


def test_gpuidx_round_trip(sparse_model, tmp_path):
    spec, profile_path = sparse_model
    neuron = 3 * type_row_bytes("Q4_0", N_EMBD)
    report, out = run_place(sparse_model, tmp_path, 300 * neuron, chunk=64, method="dp")
    ks = [r["gpu_neurons"] for r in report["layers"]]
    profile = load_profile_npz(profile_path)

    raw = out.read_bytes()
    assert raw[:4] == b"PWRI" and struct.unpack("<I", raw[4:8])[0] == 3
    assert struct.unpack("<Q", raw[8:16])[0] == 2 * N_LAYER  # n_tensors
    index = G.read_gpuidx_file(out)
    assert index.metadata["general.architecture"] == "generic.gpu_index"
    assert index.metadata["generic.gpu_index.block_count"] == N_LAYER
    assert index.vram_capacity == report["budget"]["ffn"]
    for layer, (mask, bucket) in enumerate(zip(index.masks, index.buckets)):
        counts = profile.counts[layer]
        assert mask.sum() == ks[layer]
        assert np.all(np.diff(bucket) > 0) and np.array_equal(bucket, np.flatnonzero(mask))
        if 0 < ks[layer] < N_FF:  # every GPU neuron is at least as hot as every CPU neuron
            assert counts[mask].min() >= counts[~mask].max()
    assert all(np.array_equal(a, b) for a, b in zip(G.read_gpuidx(out), P.gpu_masks(profile, ks)))

    # names in PowerInfer's positional order, and our engine's reader accepts the file
    from powerinfer_py._model import Model

    with Model(str(out), vocab_only=True) as m:
        assert m.is_sparse_file
        assert [t.name for t in m.tensors] == [f"blk.{l}.{s}" for l in range(N_LAYER)
                                               for s in ("gpu_idx", "gpu_bucket")]
        assert m.metadata["split.vram_capacity"] == str(report["budget"]["ffn"])


def test_gpuidx_empty_and_full_layers(tmp_path):
    masks = [np.zeros(96, bool), np.ones(96, bool), np.arange(96) % 3 == 0]
    path = tmp_path / "x.generated.gpuidx"
    G.write_gpuidx(path, masks, 12345)
    index = G.read_gpuidx_file(path)
    assert [len(b) for b in index.buckets] == [0, 96, 32]
    assert all(np.array_equal(a, b) for a, b in zip(index.masks, masks))
    assert index.vram_capacity == 12345


def test_read_gpuidx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.gpuidx"
    bad.write_bytes(b"NOPE" + bytes(20))
    with pytest.raises(ValueError, match="magic"):
        G.read_gpuidx(bad)
    with pytest.raises(ValueError, match="no such"):
        G.read_gpuidx(tmp_path / "missing.gpuidx")
    # a gpu_idx without its bucket: 3 tensors for 2 layers
    w = gguf.GGUFWriter(str(bad), "generic.gpu_index")
    w.add_block_count(2)
    for name in ("blk.0.gpu_idx", "blk.0.gpu_bucket", "blk.1.gpu_idx"):
        w.add_tensor(name, np.zeros(8, np.int32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    with pytest.raises(ValueError, match="3 tensors for 2 layers"):
        G.read_gpuidx(bad)
    good = tmp_path / "good.gpuidx"
    G.write_gpuidx(good, [np.ones(8, bool)], 1)
    for cut in (8, len(good.read_bytes()) - 40):  # in the tensor data, in the header
        bad.write_bytes(good.read_bytes()[:-cut])
        with pytest.raises(ValueError, match="truncated"):
            G.read_gpuidx(bad)


# -- CLI and bad input ---------------------------------------------------------------------------

def test_main_writes_report_and_file(sparse_model, tmp_path, capsys):
    spec, profile_path = sparse_model
    out = tmp_path / "cli.generated.gpuidx"
    rc = P.main([str(spec.path), "--profile", str(profile_path), "--vram-budget", "1MiB", "--margin", "0",
                 "--n-ctx", "64", "--batch", "4", "--chunk", "64", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    assert report["method"] == "milp" and report["optimal"]
    assert report["total"]["bytes"] <= report["budget"]["ffn"]
    assert report["total"]["gpu_neurons"] == sum(r["gpu_neurons"] for r in report["layers"])
    assert 0 < report["total"]["mass_covered"] <= 1
    assert {"neuron_cap", "gpu_neurons", "mass_covered", "fits"} <= set(report["powerinfer_rule"])
    assert [m.sum() for m in G.read_gpuidx(out)] == [r["gpu_neurons"] for r in report["layers"]]


def test_main_default_output_path(sparse_model, tmp_path, capsys):
    spec, profile_path = sparse_model
    model = tmp_path / "copy.powerinfer.gguf"
    model.write_bytes(spec.path.read_bytes())
    rc = P.main([str(model), "--profile", str(profile_path), "--vram-budget", "4MiB", "--margin", "0",
                 "--method", "greedy", "--no-progress", "--n-ctx", "64"])
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "copy.powerinfer.gguf.generated.gpuidx").exists()


@pytest.mark.parametrize("case, message", [
    ("missing-model", "no such model file"),
    ("missing-profile", "no such profile"),
    ("bad-budget", "cannot parse size"),
    ("small-budget", "short of what must be on the GPU"),
    ("layer-mismatch", "n_layer=2"),
    ("ff-mismatch", "n_ff=256"),
    ("not-a-profile", "not a readable"),
])
def test_main_bad_input(sparse_model, tmp_path, capsys, case, message):
    spec, profile_path = sparse_model
    model, profile, budget = str(spec.path), str(profile_path), "1MiB"
    if case == "missing-model":
        model = str(tmp_path / "nope.gguf")
    elif case == "missing-profile":
        profile = str(tmp_path / "nope.npz")
    elif case == "bad-budget":
        budget = "lots"
    elif case == "small-budget":
        budget = "10KiB"
    elif case == "layer-mismatch":
        profile = str(zipf_profile(tmp_path / "p.npz", n_layer=2))
    elif case == "ff-mismatch":
        profile = str(zipf_profile(tmp_path / "p.npz", n_ff=256))
    elif case == "not-a-profile":
        profile = str(tmp_path / "junk.npz")
        (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    rc = P.main([model, "--profile", profile, "--vram-budget", budget, "--margin", "0", "--no-progress",
                 "--out", str(tmp_path / "o.gpuidx")])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o.gpuidx").exists()


def test_main_usage_errors_return_2(capsys):
    assert P.main(["m.gguf", "--vram-budget", "1GiB"]) == 2  # neither --profile nor --activation
    assert "--profile" in capsys.readouterr().err
    assert P.main(["m.gguf", "--profile", "p.npz", "--vram-budget", "1GiB", "--method", "magic"]) == 2


# -- PowerInfer's activation folder, plot ------------------------------------------------------

def test_activation_dir_numeric_order(tmp_path):
    torch = pytest.importorskip("torch")
    folder = tmp_path / "activation"
    folder.mkdir()
    for layer in range(12):  # layer L's file holds the value L: string order would put 10 at index 2
        torch.save(torch.full((64,), float(layer)), folder / f"activation_{layer}.pt")
    profile = load_activation_dir(folder)
    assert (profile.n_layer, profile.n_ff, profile.n_tokens) == (12, 64, None)
    assert [int(c[0]) for c in profile.counts] == list(range(12))
    (folder / "activation_5.pt").unlink()
    with pytest.raises(ValueError, match=r"missing \[5\]"):
        load_activation_dir(folder)


def test_plot_writes_png(sparse_model, tmp_path):
    pytest.importorskip("matplotlib")
    _, profile_path = sparse_model
    profile = load_profile_npz(profile_path)
    png = tmp_path / "curves.png"
    P.plot_activation_curves(profile, png, placement=[64, 128, 0])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    P.plot_activation_curves(profile, tmp_path / "plain.png")
    assert (tmp_path / "plain.png").stat().st_size > 1000


def test_main_with_activation_dir_and_powerinfer_rule(sparse_model, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    spec, profile_path = sparse_model
    profile = load_profile_npz(profile_path)
    folder = tmp_path / "activation"
    folder.mkdir()
    for layer, counts in enumerate(profile.counts):
        torch.save(torch.tensor(counts), folder / f"activation_{layer}.pt")
    out = tmp_path / "pi.generated.gpuidx"
    rc = P.main([str(spec.path), "--activation", str(folder), "--vram-budget", "1MiB", "--margin", "0",
                 "--n-ctx", "64", "--method", "powerinfer", "--out", str(out), "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    report = json.loads(captured.out)
    # the chosen placement is PowerInfer's rule itself: hottest chunks under its neuron cap
    assert report["total"]["gpu_neurons"] == report["powerinfer_rule"]["gpu_neurons"]
    assert report["total"]["gpu_neurons"] <= report["powerinfer_rule"]["neuron_cap"]
    assert all(r["gpu_neurons"] % 256 == 0 for r in report["layers"])
    assert [m.sum() for m in G.read_gpuidx(out)] == [r["gpu_neurons"] for r in report["layers"]]
