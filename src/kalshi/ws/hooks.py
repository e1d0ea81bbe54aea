"""Runs user code (callbacks, on_error, on_state_change) off the receive path, in order, with kept tasks.

The receive path is synchronous and must never await user code: it only enqueues. Each callback channel has
one bounded queue and one task, so callbacks of a channel see messages in order; when a callback queue is full
the client pauses socket reads until it drains (nothing is dropped). Hooks (errors, state changes) share one
queue and one task. Every task is kept and cancelled on :meth:`HookRunner.stop`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from kalshi.ws.codes import ClientErrorCode
from kalshi.ws.connection import ConnectionState
from kalshi.ws.lifecycle import LifecycleEvent, LifecycleListener
from kalshi.ws.models import ErrorMessage, ErrorPayload

__all__ = ["HookRunner"]

logger = logging.getLogger(__name__)

_CALLBACK_QUEUE: Final = 10_000
_HOOK_QUEUE: Final = 10_000

MessageCallback = Callable[[Any], Awaitable[None]]
LifecycleCallback = Callable[[LifecycleEvent], Awaitable[None]]


class HookRunner:
    """Owns the tasks that run user code for one session."""

    def __init__(
        self,
        on_error: Callable[[ErrorMessage], Awaitable[None]] | None,
        on_state_change: Callable[[ConnectionState, ConnectionState], Awaitable[None]] | None,
    ) -> None:
        self._on_error = on_error
        self._on_state_change = on_state_change
        self._hooks: MessageQueue[tuple[str, Any]] = MessageQueue(_HOOK_QUEUE, OverflowStrategy.DROP_OLDEST)
        self._hooks.close()  # opened by start()
        self._channels: dict[str, MessageQueue[Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drainers: set[asyncio.Task[Any]] = set()  # hook and callback runners: allowed to finish their queue
        self._lifecycle: LifecycleListener | None = None
        self._running = False
        self.callback_errors = 0

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Start running hooks (one session); :meth:`stop` ends it."""
        self._running = True
        self._hooks = MessageQueue(_HOOK_QUEUE, OverflowStrategy.DROP_OLDEST)
        if self._on_error is not None or self._on_state_change is not None:
            self._drainers.add(self.spawn(self._run_hooks()))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a helper coroutine as a kept task (cancelled by :meth:`stop`)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    # ------------------------------------------------------------------ hooks

    def error(self, message: ErrorMessage) -> None:
        """Hand an error to ``on_error`` (dropped when no session runs)."""
        if self._on_error is not None:
            self._hooks.put_nowait(("error", message))

    def client_error(self, code: int, text: str, sid: int | None = None) -> None:
        """Report one of the client's own findings (a :class:`~kalshi.ws.codes.ClientErrorCode`) to ``on_error``."""
        logger.warning("%s", text)
        self.error(ErrorMessage(msg=ErrorPayload(code=code, msg=text), sid=sid))

    def state(self, old: ConnectionState, new: ConnectionState) -> None:
        if self._on_state_change is not None:
            self._hooks.put_nowait(("state", (old, new)))

    async def _run_hooks(self) -> None:
        async for kind, payload in self._hooks:
            try:
                if kind == "error" and self._on_error is not None:
                    await self._on_error(payload)
                elif kind == "state" and self._on_state_change is not None:
                    await self._on_state_change(*payload)
            except Exception:
                # Not reported to on_error: that hook may be the one failing.
                self.callback_errors += 1
                logger.exception("%s hook raised; the session continues", kind)

    def _callback_failed(self, what: str, exc: Exception) -> None:
        self.callback_errors += 1
        logger.exception("%s raised; the session continues", what)
        text = f"{what} raised {type(exc).__name__}: {exc}"
        self.error(ErrorMessage(msg=ErrorPayload(code=ClientErrorCode.CALLBACK, msg=text)))

    # ------------------------------------------------------------------ lifecycle hooks

    def watch_lifecycle(self, events: LifecycleListener, callbacks: list[LifecycleCallback]) -> None:
        """Run ``callbacks`` (a live list) for every event of ``events``, in order; one watcher per session."""
        if self._lifecycle is not None:
            events.close()
            return
        self._lifecycle = events
        self._drainers.add(self.spawn(self._run_lifecycle(events, callbacks)))

    async def _run_lifecycle(self, events: LifecycleListener, callbacks: list[LifecycleCallback]) -> None:
        async for event in events:
            for callback in list(callbacks):
                try:
                    await callback(event)
                except Exception as exc:
                    self._callback_failed(f"lifecycle callback {getattr(callback, '__name__', callback)!r}", exc)

    # ------------------------------------------------------------------ channel callbacks

    def ensure_channel(self, channel: str, callbacks: list[MessageCallback]) -> MessageQueue[Any]:
        """The lossless callback queue of ``channel`` (a runner task is started for it once per session)."""
        queue = self._channels.get(channel)
        if queue is None:
            queue = self._channels[channel] = MessageQueue(_CALLBACK_QUEUE, OverflowStrategy.BLOCK)
            self._drainers.add(self.spawn(self._run_channel(channel, queue, callbacks)))
        return queue

    def dispatch(self, channel: str, message: Any) -> bool:
        """Queue a message for the channel's callbacks. Returns True when its queue is full."""
        queue = self._channels.get(channel)
        if queue is None:
            return False
        queue.put_nowait(message)
        return queue.is_full

    async def _run_channel(self, channel: str, queue: MessageQueue[Any], callbacks: list[MessageCallback]) -> None:
        async for message in queue:
            for callback in list(callbacks):
                try:
                    await callback(message)
                except Exception as exc:
                    self._callback_failed(f"callback for {channel!r}", exc)

    # ------------------------------------------------------------------ shutdown

    async def stop(self) -> None:
        """Let queued hooks run briefly, then cancel every task and wait for them."""
        self._running = False
        self._hooks.close()
        if self._lifecycle is not None:
            self._lifecycle.close()
        for queue in self._channels.values():
            queue.close()
        helpers = [task for task in self._tasks if task not in self._drainers]
        for task in helpers:
            task.cancel()
        drainers = [task for task in self._drainers if not task.done()]
        pending: set[asyncio.Task[Any]] = set()
        if drainers:
            _, pending = await asyncio.wait(drainers, timeout=0.5)
            for task in pending:
                task.cancel()
        remaining = [*helpers, *pending]
        if remaining:
            await asyncio.wait(remaining)
        self._tasks.clear()
        self._drainers.clear()
        self._channels.clear()
        self._lifecycle = None
