"""LangChain with powerinfer-py: a prompt | model | parser chain, streaming, structured output.

    pip install 'powerinfer-py[langchain]'
    python examples/langchain_chain.py [model.gguf]
"""
import sys

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, Field

from powerinfer_py.assets import smollm2_path
from powerinfer_py.langchain import ChatPowerInfer

model_path = sys.argv[1] if len(sys.argv) > 1 else str(smollm2_path())
chat = ChatPowerInfer(model_path=model_path, n_ctx=2048, max_tokens=96, temperature=0.3)

prompt = ChatPromptTemplate.from_messages([
    ("system", "You are a helpful assistant who answers in two sentences."),
    ("user", "Explain {topic} to a child."),
])
chain = prompt | chat | StrOutputParser()

print("invoke:", chain.invoke({"topic": "rainbows"}))

print("stream: ", end="", flush=True)
for piece in chain.stream({"topic": "volcanoes"}):
    print(piece, end="", flush=True)
print()


class Book(BaseModel):
    """A book mentioned in the text."""

    title: str = Field(description="the book's title")
    author: str = Field(description="who wrote it")
    year: int = Field(description="year of publication")


extract = chat.with_structured_output(Book)  # generation is constrained to Book's JSON schema
print("structured:", extract.invoke("Nineteen Eighty-Four is a novel by George Orwell, published in 1949."))
