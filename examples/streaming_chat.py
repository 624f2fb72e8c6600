"""A streaming chat loop: the model's own chat template, tokens printed as they come.

    python examples/streaming_chat.py [model.gguf]          # interactive
    echo "Tell me a joke" | python examples/streaming_chat.py

Each turn resends the whole history; the KV cache keeps the common prefix, so only the new
message is evaluated.
"""
import sys

from powerinfer_py import Llama
from powerinfer_py.assets import smollm2_path

model_path = sys.argv[1] if len(sys.argv) > 1 else str(smollm2_path())
messages = [{"role": "system", "content": "You are a concise, friendly assistant."}]

with Llama(model_path=model_path, n_ctx=2048, verbose=False) as llm:
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            break
        if not line.strip():
            continue
        messages.append({"role": "user", "content": line.strip()})
        print("assistant> ", end="", flush=True)
        reply = []
        for chunk in llm.create_chat_completion(messages, stream=True, max_tokens=256,
                                                stream_options={"include_usage": True}):
            if not chunk["choices"]:
                print(f"\n[{chunk['usage']['completion_tokens']} tokens]", file=sys.stderr)
                continue
            piece = chunk["choices"][0]["delta"].get("content")
            if piece:
                reply.append(piece)
                print(piece, end="", flush=True)
        print()
        messages.append({"role": "assistant", "content": "".join(reply)})
