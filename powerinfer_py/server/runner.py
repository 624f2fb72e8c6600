"""One model, one generation at a time: a fair FIFO queue in front of a worker thread.

Requests take turns through an asyncio.Lock (its waiters are woken in arrival order and a newcomer
cannot jump ahead of them), so requests are served first come, first served. The Llama call runs in
a worker thread so the event loop keeps serving /health, queueing and streaming.

Cancellation: each job has a threading.Event. It is set when the client disconnects (polled while
the request waits and while it runs) or when the SSE stream is closed. The worker checks it between
chunks, and a logits processor checks it before every sampled token, so a generation stops within
one token of the client going away. The turn is handed on only when the worker thread has finished.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, AsyncIterator, Callable, Iterator, Optional

import numpy as np

from .errors import APIError

POLL_S = 0.05  # how often a waiting or running request looks for a client disconnect


class Cancelled(Exception):
    """Raised inside the worker when the job's client has gone."""


class _Job:
    """Per-request state shared by the event loop and the worker thread."""

    def __init__(self, runner: "ModelRunner"):
        self.cancel = threading.Event()
        self._runner = runner

    def logits_processor(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Called by Llama before each token is sampled: counts it, or stops a cancelled job."""
        if self.cancel.is_set():
            raise Cancelled()
        self._runner._count_token()
        return scores


class ModelRunner:
    """Owns the Llama; every use goes through run() or stream()."""

    def __init__(self, llama, max_queue: int = 64):
        self.llama = llama
        self.max_queue = max_queue
        self._lock: Optional[asyncio.Lock] = None
        self._waiting = 0
        self._busy = False
        self._count_lock = threading.Lock()
        self.tokens_sampled = 0  # tokens sampled since start (for /health and tests)
        self.cancelled_jobs = 0  # jobs stopped because their client went away

    # ------------------------------------------------------------------ bookkeeping
    def _count_token(self) -> None:
        with self._count_lock:
            self.tokens_sampled += 1

    def stats(self) -> dict:
        return {"busy": self._busy, "waiting": self._waiting, "tokens_sampled": self.tokens_sampled,
                "cancelled_jobs": self.cancelled_jobs}

    # ------------------------------------------------------------------ the queue
    async def _acquire(self, is_disconnected: Callable) -> None:
        """Waits for this request's turn; gives up if its client disconnects meanwhile."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        if self._waiting >= self.max_queue:
            raise APIError(503, f"the server has {self._waiting} requests waiting; try again later",
                           "server_error", code="server_busy")
        self._waiting += 1
        try:
            turn = asyncio.ensure_future(self._lock.acquire())
            while True:
                done, _ = await asyncio.wait({turn}, timeout=POLL_S)
                if done:
                    break
                if await is_disconnected():
                    turn.cancel()
                    try:
                        await turn
                    except asyncio.CancelledError:
                        pass
                    else:
                        self._lock.release()
                    raise Cancelled()
        finally:
            self._waiting -= 1
        self._busy = True

    def _release(self, *_: Any) -> None:
        self._busy = False
        self._lock.release()

    async def _watch(self, job: _Job, is_disconnected: Callable, done: asyncio.Future) -> None:
        """Sets job.cancel when the client disconnects before the work is done."""
        while not done.done() and not job.cancel.is_set():
            try:
                if await is_disconnected():
                    job.cancel.set()
                    return
            except Exception:
                return
            await asyncio.sleep(POLL_S)

    # ------------------------------------------------------------------ whole answers
    async def run(self, fn: Callable[[_Job], Any], is_disconnected: Callable) -> Any:
        """Runs fn(job) in the worker thread during this request's turn and returns its result."""
        await self._acquire(is_disconnected)
        job = _Job(self)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, fn, job)
        fut.add_done_callback(self._release)  # the turn passes on only when the thread is done
        watcher = asyncio.ensure_future(self._watch(job, is_disconnected, fut))
        try:
            return await asyncio.shield(fut)
        except Cancelled:
            self.cancelled_jobs += 1
            raise
        finally:
            job.cancel.set() if not fut.done() else None
            watcher.cancel()

    # ------------------------------------------------------------------ streams
    async def stream(self, make_iter: Callable[[_Job], Iterator[Any]],
                     is_disconnected: Callable) -> AsyncIterator[Any]:
        """Starts make_iter(job) in the worker thread and waits for its first item, so that errors
        raised before any output (context too long, bad grammar) surface here as exceptions. Returns
        an async iterator over all items; closing it, or the client disconnecting, stops the work."""
        await self._acquire(is_disconnected)
        job = _Job(self)
        loop = asyncio.get_running_loop()
        items: asyncio.Queue = asyncio.Queue()
        put = lambda kind, value: loop.call_soon_threadsafe(items.put_nowait, (kind, value))  # noqa: E731

        def work() -> None:
            it = None
            try:
                it = make_iter(job)
                for item in it:
                    if job.cancel.is_set():
                        break
                    put("item", item)
            except Cancelled:
                pass
            except BaseException as e:  # handed to the event loop, which raises or logs it
                put("error", e)
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:
                        pass
                if job.cancel.is_set():
                    self.cancelled_jobs += 1
                put("end", None)

        fut = loop.run_in_executor(None, work)
        fut.add_done_callback(self._release)
        watcher = asyncio.ensure_future(self._watch(job, is_disconnected, fut))
        try:
            kind, first = await items.get()
        except BaseException:
            job.cancel.set()
            raise
        if kind == "error":
            job.cancel.set()
            raise first
        return self._drain(job, items, kind, first, watcher)

    @staticmethod
    async def _drain(job: _Job, items: asyncio.Queue, kind: str, first: Any, watcher) -> AsyncIterator[Any]:
        try:
            while kind != "end":
                if kind == "error":
                    raise first
                yield first
                kind, first = await items.get()
        finally:
            # no await here: this runs inside a cancelled scope when the client went away
            job.cancel.set()
            watcher.cancel()
