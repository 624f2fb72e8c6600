"""Structured output: JSON that always parses, optionally following a JSON schema.

    python examples/json_output.py [model.gguf]
"""
import json
import sys

from powerinfer_py import Llama
from powerinfer_py.assets import smollm2_path
from powerinfer_py.llama_grammar import LlamaGrammar

model_path = sys.argv[1] if len(sys.argv) > 1 else str(smollm2_path())
schema = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "country": {"type": "string"},
        "population_millions": {"type": "number"},
        "landmarks": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["name", "country", "population_millions", "landmarks"],
}

with Llama(model_path=model_path, n_ctx=1024, verbose=False) as llm:
    messages = [{"role": "user", "content": "Describe the city of Paris as JSON."}]

    # Any JSON object (llama-cpp-python's form).
    out = llm.create_chat_completion(messages, response_format={"type": "json_object"}, temperature=0.2, seed=1,
                                     max_tokens=200)  # the output is closed in time, so it parses
    print(json.dumps(json.loads(out["choices"][0]["message"]["content"]), indent=2, ensure_ascii=False))

    # OpenAI's json_schema form.
    out = llm.create_chat_completion(
        messages, temperature=0.2, seed=1, max_tokens=200,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
    city = json.loads(out["choices"][0]["message"]["content"])
    print(json.dumps(city, indent=2, ensure_ascii=False))

    # A GBNF grammar on a plain completion.
    yes_no = LlamaGrammar.from_string('root ::= "yes" | "no"')
    out = llm("Is Paris the capital of France? Answer yes or no:", grammar=yes_no, temperature=0.0)
    print("grammar answer:", out["choices"][0]["text"])
