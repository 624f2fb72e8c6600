"""One pass of the engine over a corpus, as profile.py and train_predictor.py make it: the ReLU
model in dense mode (every neuron computed, so what the engine counts or records is exact), the
text tokenized up to a limit, evaluated in windows of n_ctx tokens, each a fresh sequence."""
from __future__ import annotations

import sys
from typing import Iterable, List, Tuple


def open_relu_model(model_path: str, *, n_ctx: int, n_threads: int = 0) -> Tuple[object, List[int]]:
    """(a Llama in dense mode, the ids of its layers whose FFN runs the sparse path). ValueError for
    a model without any: a SiLU FFN has no neuron that is ever exactly off."""
    from .._lib import lib
    from ..llama import Llama

    llm = Llama(model_path, n_ctx=n_ctx, n_batch=n_ctx, n_threads=n_threads or None, verbose=False,
                sparse_mode="dense")
    layers = [il for il in range(int(lib.pi_model_n_layer(llm._mp))) if lib.pi_model_layer_is_sparse(llm._mp, il)]
    if not layers:
        llm.close()
        raise ValueError(f"{model_path}: no layer has a ReLU FFN (a SiLU model): no neuron is ever exactly "
                         f"off, so there is nothing to count or predict")
    return llm, layers


def corpus_ids(llm, texts: Iterable[str], limit: int) -> List[int]:
    """The token ids of the texts (each with BOS), at most limit of them."""
    ids: List[int] = []
    for text in texts:
        ids.extend(llm.tokenize(text.encode("utf-8"), add_bos=True))
        if len(ids) >= limit:
            break
    return ids[:limit]


def eval_windows(llm, ids: List[int], n_ctx: int, desc: str, progress: bool = True) -> None:
    """Evaluates ids in windows of n_ctx tokens, each a fresh sequence, with a progress bar."""
    from tqdm import tqdm

    with tqdm(total=len(ids), desc=desc, unit="tok", disable=not progress, file=sys.stderr) as bar:
        for i in range(0, len(ids), n_ctx):
            llm.reset()
            llm.eval(ids[i:i + n_ctx])
            bar.update(len(ids[i:i + n_ctx]))
