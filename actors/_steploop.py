"""``StepLoop``: one event loop thread on which every async step runs.

Each step is one driver task that runs its attempts in turn; an attempt past
its limit is cancelled, and a retry waits with ``asyncio.sleep``, so a thousand
steps waiting on I/O share the thread and overlap.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from actors._attempts import Limit
from actors._definitions import ActivityDefinition

if TYPE_CHECKING:
    from actors._worker import _Run

__all__ = ["StepLoop"]


class StepLoop:
    def __init__(self, name: str = "chronik-step-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # Touched on the loop thread only: every driver, and those in a retry wait.
        self._drivers: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[Any]] = set()

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self, run: _Run) -> None:
        """Run ``run``'s attempts on the loop (started if need be)."""
        with self._lock:
            if self._closed:
                return
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name=self._name, daemon=True
                )
                self._thread.start()
            self._loop.call_soon_threadsafe(self._spawn, run)

    def close(self) -> None:
        """Drop the steps waiting to retry, let running attempts finish, then
        end the loop's thread."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._finish(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    async def _finish(self) -> None:
        for waiting in self._waiting:
            waiting.cancel()
        if self._drivers:
            await asyncio.wait(self._drivers)

    def _spawn(self, run: _Run) -> None:
        driver = asyncio.get_running_loop().create_task(self._drive(run))
        self._drivers.add(driver)
        driver.add_done_callback(self._drivers.discard)

    async def _drive(self, run: _Run) -> None:
        try:
            await self._attempts(run)
        except BaseException as error:  # a bug of the worker's: never the step's
            run.broke(error)

    async def _attempts(self, run: _Run) -> None:
        job, worker = run.job, run.worker
        if job.delay > 0 and not await self._wait(run, job.delay):
            return
        # Started before the worker began closing: no thread to wait for, so
        # not queued. Only a retry wait is dropped when it closes.
        while True:
            limit, context = run.begin()
            loop = asyncio.get_running_loop()
            task = loop.create_task(_call(job.step, job.args), context=context)
            try:  # as history will hold it: the live run sees what a replay sees
                result = worker.normalise(await _bounded(task, limit))
            except Exception as error:
                delay = context.run(run.failed, error)
                if delay is None or not await self._wait(run, delay):
                    return
            else:
                run.succeeded(result)
                return

    async def _wait(self, run: _Run, delay: float) -> bool:
        """Wait out a retry ``delay``; False if the worker closed meanwhile."""
        real = run.worker.clock.retry_wait(delay)
        began = run.spent.wait_began()
        me = asyncio.current_task()
        assert me is not None
        self._waiting.add(me)
        try:
            await asyncio.sleep(real)
        except asyncio.CancelledError:
            return False  # dropped: the worker is closing
        finally:
            self._waiting.discard(me)
        run.spent.wait_ended(began, delay)
        return not run.worker.closing


async def _call(step: ActivityDefinition, args: tuple[Any, ...]) -> Any:
    return await step.fn(*args)


async def _bounded(task: asyncio.Task[Any], limit: Limit | None) -> Any:
    if limit is None:
        return await task
    # asyncio.wait, not wait_for: a TimeoutError the step raises itself (a socket
    # timeout, say) is its own failure, not this step's timeout.
    done, _ = await asyncio.wait({task}, timeout=limit.seconds)
    if done:
        return task.result()
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log the dropped outcome
    raise limit.error
