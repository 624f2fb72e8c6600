"""Llama.from_pretrained: a GGUF from the Hugging Face Hub, chosen by a filename glob.

    python examples/from_pretrained.py bartowski/SmolLM2-135M-Instruct-GGUF '*Q4_K_M.gguf'

Needs `pip install huggingface_hub`. Files land in the Hugging Face cache (~/.cache/huggingface/hub)
and later runs find them there, also offline (HF_HUB_OFFLINE=1). Without arguments the example
builds a small local cache holding SmolLM2 (no network) and loads from it offline, to show the call.
"""
import os
import sys
import tempfile
from pathlib import Path

from powerinfer_py import Llama

if len(sys.argv) >= 3:
    repo_id, pattern = sys.argv[1], sys.argv[2]
    cache_dir = None
else:
    from powerinfer_py.assets import smollm2_path

    import huggingface_hub.constants

    repo_id, pattern = "local/SmolLM2-135M-Instruct-GGUF", "*Q4_1.gguf"
    cache_dir = Path(tempfile.mkdtemp()) / "hub"
    commit = "0" * 40
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    os.symlink(smollm2_path(), repo / "snapshots" / commit / "SmolLM2-135M-Instruct.Q4_1.gguf")
    huggingface_hub.constants.HF_HUB_OFFLINE = True

with Llama.from_pretrained(repo_id, pattern, cache_dir=cache_dir, n_ctx=512, verbose=False) as llm:
    print("loaded", llm.model_path)
    out = llm.create_chat_completion([{"role": "user", "content": "Say hello in French."}], max_tokens=32)
    print(out["choices"][0]["message"]["content"])
