"""Dynamic micro-batching: concurrent requests answered together by the student.

Requests join a queue on the event loop. A batch leaves when a model thread is free: at once
when `max_batch` requests wait or no other request is on its way in, else after the first has
waited `max_wait_s` for the others (so a request pays at most that). Under load the queue fills
while every thread works, and batches leave full with no wait at all. A batch runs in a thread
(onnxruntime and PyTorch release the GIL), so the loop keeps reading requests meanwhile;
`threads` batches run at once. A student that cannot run concurrently (a causal LM loaded in
this process) gets one thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable


class MicroBatcher:
    def __init__(
        self,
        answer_many: Callable[[list[str]], list[Any]],
        *,
        max_batch: int,
        max_wait_s: float,
        threads: int,
        on_batch: Callable[[int], None] = lambda size: None,
        in_flight: Callable[[], int] | None = None,
    ):
        self.answer_many, self.max_batch, self.max_wait_s = answer_many, max_batch, max_wait_s
        self.threads, self.on_batch = threads, on_batch
        self.in_flight = in_flight  # requests the server has admitted: more than wait here means more to come
        self._pending: deque[tuple[str, asyncio.Future]] = deque()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="student")
        self._task: asyncio.Task | None = None
        self._running = 0  # rows in batches the threads are running

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()  # a request joined the queue
        self._full = asyncio.Event()  # max_batch requests wait
        self._free = asyncio.Semaphore(self.threads)  # a model thread is free
        self._task = asyncio.create_task(self._dispatch(), name="micro-batcher")

    async def answer(self, text: str) -> Any:
        future = self._loop.create_future()
        self._pending.append((text, future))
        self._arrived.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        return await future

    async def _dispatch(self) -> None:
        while True:
            while not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            await self._free.acquire()
            if len(self._pending) < self.max_batch and self.max_wait_s > 0 and self._more_coming():
                self._full.clear()
                try:  # the model is idle and few wait: give others a moment to join
                    await asyncio.wait_for(self._full.wait(), self.max_wait_s)
                except asyncio.TimeoutError:
                    pass
            batch = [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]
            batch = [(text, future) for text, future in batch if not future.cancelled()]  # its client left
            if not batch:
                self._free.release()
                continue
            self.on_batch(len(batch))
            self._running += len(batch)
            running = self._loop.run_in_executor(self._pool, self.answer_many, [text for text, _ in batch])
            running.add_done_callback(lambda done, batch=batch: self._settle(done, batch))

    def _more_coming(self) -> bool:
        return self.in_flight is None or self.in_flight() > len(self._pending) + self._running

    def _settle(self, done: asyncio.Future, batch: list[tuple[str, asyncio.Future]]) -> None:
        self._free.release()
        self._running -= len(batch)
        error = done.exception()
        answers = None if error else done.result()
        for i, (_, future) in enumerate(batch):
            if future.done():
                continue
            if error:
                future.set_exception(error)
            else:
                future.set_result(answers[i])

    async def stop(self, grace_s: float = 30) -> None:
        """Answer what is queued, then stop the dispatcher and the threads."""
        deadline = time.monotonic() + grace_s
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self._loop.run_in_executor(None, self._pool.shutdown)

    @property
    def depth(self) -> int:
        return len(self._pending)
