"""Talk to powerinfer-py's OpenAI-compatible server with the official `openai` client.

    pip install 'powerinfer-py[server]' openai
    python examples/server_openai_client.py [model.gguf]

Starts `python -m powerinfer_py.server` on 127.0.0.1 (a free port), then: a completion, a streamed
chat, a JSON-constrained answer and an embedding; stops the server at the end. Against a server you
started yourself, point OpenAI(base_url=...) at it and skip the subprocess part.
"""
import json
import socket
import subprocess
import sys
import time

import httpx
from openai import OpenAI

from powerinfer_py.assets import smollm2_path

model_path = sys.argv[1] if len(sys.argv) > 1 else str(smollm2_path())
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]

server = subprocess.Popen([sys.executable, "-m", "powerinfer_py.server", "--model", model_path,
                           "--host", "127.0.0.1", "--port", str(port), "--api-key", "sk-local",
                           "--log-level", "warning"])
base = f"http://127.0.0.1:{port}"
try:
    for _ in range(300):  # wait (at most 60 s) for the model to load
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    client = OpenAI(base_url=base + "/v1", api_key="sk-local")
    model = client.models.list().data[0].id
    print("model:", model)

    out = client.completions.create(model=model, prompt="The three primary colours are", max_tokens=24,
                                    temperature=0)
    print("completion:", out.choices[0].text.strip())

    print("chat: ", end="", flush=True)
    stream = client.chat.completions.create(model=model, stream=True, max_tokens=64,
                                            messages=[{"role": "user", "content": "Write a haiku about rain."}])
    for chunk in stream:
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()

    out = client.chat.completions.create(
        model=model, max_tokens=64, temperature=0, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Describe a cat as JSON with name and colour."}])
    print("json:", json.loads(out.choices[0].message.content))

    emb = client.embeddings.create(model=model, input=["a sentence to embed"])
    print("embedding: %d floats, first %s" % (len(emb.data[0].embedding), emb.data[0].embedding[:3]))
finally:
    server.terminate()
    server.wait(timeout=10)
