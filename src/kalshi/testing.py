"""pytest plugin: a local Kalshi exchange for your bot's tests, for async and plain tests alike.

Installed with kalshi-kit (needs the ``sim`` extra) and loaded automatically (entry point ``pytest11``).

Fixtures:

* ``kalshi_sim``: a running simulator (4 markets, seed 0, no background activity: drive it with
  ``sim.step(n)``), stopped after the test.

  - In an ``async def`` test (pytest-asyncio) it is a :class:`~kalshi.sim.Simulator` on the test's own
    event loop: use it directly, ``await sim.quiesce()`` included.
  - In a plain ``def`` test it is a :class:`SimulatorThread`: the same simulator running on its own thread
    and event loop, so blocking clients such as :class:`~kalshi.KalshiClient` get their answers while the
    test waits. Its methods and attributes are the simulator's, called on the simulator's loop.

* ``kalshi_sim_factory``: ``factory(**options)`` makes a simulator with your options (merged over
  :data:`DEFAULT_SIM_OPTIONS`), unstarted: ``async with factory(rate=50) as sim:`` in an async test,
  ``with factory(rate=50) as sim:`` in a plain one. Any still running are stopped after the test.

Both give the same handles: ``sim.url`` and ``sim.config`` (a :class:`~kalshi.KalshiConfig` for the
clients), ``sim.tickers``, ``sim.create_account_auth()`` returning ``(auth, account_id)``, ``sim.book(ticker)``
(the exchange's own book), ``sim.step(n)``, ``sim.place_order(...)`` and ``sim.faults``.

:func:`wait_for_book` waits for a streamed book with a deadline, so a test against a quiet simulator fails
with a clear message instead of hanging.

Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

import pytest

from kalshi.errors import KalshiError

if TYPE_CHECKING:
    from kalshi.config import KalshiConfig
    from kalshi.models.markets import Orderbook
    from kalshi.sim import Simulator
    from kalshi.ws.client import KalshiWebSocket

__all__ = [
    "DEFAULT_SIM_OPTIONS",
    "BookWaitTimeout",
    "SimulatorThread",
    "kalshi_sim",
    "kalshi_sim_factory",
    "wait_for_book",
]

T = TypeVar("T")

DEFAULT_SIM_OPTIONS: Final[dict[str, Any]] = {"seed": 0, "markets": 4, "rate": 0.0}

_START_TIMEOUT: Final = 30.0
_CALL_TIMEOUT: Final = 30.0
# Values handed back as they are; anything else read through a SimulatorThread stays on the simulator's loop.
_PLAIN_VALUES: Final = (type(None), bool, int, float, str, bytes, Decimal, tuple, frozenset, list, dict, set)


class BookWaitTimeout(KalshiError, TimeoutError):
    """:func:`wait_for_book` saw no book for the market within its timeout."""


class SimulatorThread:
    """A :class:`~kalshi.sim.Simulator` on its own thread and event loop, driven from synchronous code.

    Use as ``with SimulatorThread(seed=1, rate=20) as sim:``. The simulator is not thread-safe, so every
    attribute read and method call runs on its loop: ``sim.book(ticker)``, ``sim.step(5)``,
    ``sim.faults.<method>(...)`` (coroutine methods are awaited there, so ``sim.quiesce()`` blocks until
    done). :meth:`call` runs any function of the simulator there.

    Args:
        **options: :class:`~kalshi.sim.Simulator` options (``port`` defaults to 0: a free port).

    Raises:
        TimeoutError: the simulator did not start within 30 s.
        OSError: the port cannot be bound.
    """

    def __init__(self, **options: Any) -> None:
        self.options: dict[str, Any] = {"port": 0, **options}
        self._sim: Simulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> SimulatorThread:
        """Start the simulator and return once it is listening.

        Raises:
            TimeoutError: it did not start within 30 s.
            OSError: the port cannot be bound.
        """
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="kalshi-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise TimeoutError(f"the simulator thread did not start within {_START_TIMEOUT:g} s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stop the simulator and wait for its thread (idempotent)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(_CALL_TIMEOUT)
        self._thread = None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from kalshi.sim import Simulator

        self._stop = asyncio.Event()
        try:
            async with Simulator(**self.options) as sim:
                self._sim = sim
                self._loop = asyncio.get_running_loop()
                self._ready.set()
                await self._stop.wait()
        finally:
            self._sim = None

    # -- the simulator's surface -------------------------------------------------------------------------------

    @property
    def simulator(self) -> Simulator:
        """The simulator itself (touch it only on its loop, e.g. through :meth:`call`)."""
        if self._sim is None:
            raise RuntimeError("the simulator is not running: use `with SimulatorThread(...) as sim:`")
        return self._sim

    @property
    def url(self) -> str:
        """Base URL (REST and WebSocket on one port), e.g. ``http://127.0.0.1:54321``."""
        return self.simulator.url

    @property
    def ws_url(self) -> str:
        """The WebSocket URL."""
        return self.simulator.ws_url

    @property
    def config(self) -> KalshiConfig:
        """A :class:`~kalshi.KalshiConfig` pointing at this simulator."""
        return self.simulator.config

    def call(self, fn: Callable[[Simulator], T]) -> T:
        """Run ``fn(simulator)`` on the simulator's loop and return its result (awaited if a coroutine).

        Raises:
            TimeoutError: no result within 30 s.
        """
        sim = self.simulator
        loop = self._loop
        assert loop is not None

        async def on_loop() -> Any:
            result: Any = fn(sim)
            if inspect.isawaitable(result):
                result = await result
            return result

        value: T = asyncio.run_coroutine_threadsafe(on_loop(), loop).result(_CALL_TIMEOUT)
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _read(self, lambda sim: getattr(sim, name))

    def __repr__(self) -> str:
        where = self._sim.url if self._sim is not None else "not running"
        return f"SimulatorThread({where})"


class _OnLoop:
    """An object of a :class:`SimulatorThread`'s simulator (e.g. ``sim.faults``), used from another thread."""

    def __init__(self, owner: SimulatorThread, path: Callable[[Simulator], Any]) -> None:
        self._owner = owner
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        path = self._path
        return _read(self._owner, lambda sim: getattr(path(sim), name))

    def __repr__(self) -> str:
        return f"<on the simulator's loop: {self._owner.call(lambda sim: repr(self._path(sim)))}>"


def _read(owner: SimulatorThread, path: Callable[[Simulator], Any]) -> Any:
    value = owner.call(path)
    if callable(value) and not isinstance(value, type):

        def method(*args: Any, **kwargs: Any) -> Any:
            return owner.call(lambda sim: path(sim)(*args, **kwargs))

        return method
    if isinstance(value, _PLAIN_VALUES) or _is_frozen(value):
        return value
    return _OnLoop(owner, path)


def _is_frozen(value: object) -> bool:
    # Frozen value objects (KalshiConfig, Orderbook views, msgspec frozen Structs) are safe to hand over.
    params = getattr(type(value), "__dataclass_params__", None)
    if params is not None and getattr(params, "frozen", False):
        return True
    struct_config = getattr(type(value), "__struct_config__", None)
    if struct_config is not None and getattr(struct_config, "frozen", False):
        return True
    return type(value).__module__.startswith("kalshi.models")


async def wait_for_book(session: KalshiWebSocket, ticker: str, *, within: float = 5.0) -> Orderbook:
    """The streamed book of ``ticker``: at once if the session already has it, else as soon as it arrives.

    Subscribe first (``await session.orderbook([ticker])``). Unlike waiting for the next change, this does
    not hang on a quiet simulator: the book exists once its snapshot arrives, changes or not.

    Args:
        session: a connected :class:`~kalshi.ws.KalshiWebSocket`.
        ticker: the market.
        within: seconds to wait at most.

    Raises:
        BookWaitTimeout: no book within ``within`` seconds (not subscribed, unknown market, or the connection is
            down); the message says which markets do have books.
    """
    book = session.books.get(ticker)
    if book is not None:
        return book
    try:
        async with asyncio.timeout(within):
            return await session.wait_for_book(ticker)
    except TimeoutError:
        have = ", ".join(sorted(session.books)) or "none"
        raise BookWaitTimeout(
            f"no order book for {ticker} within {within:g} s: subscribe it first "
            f"(await session.orderbook([{ticker!r}])) and check the ticker exists; books held: {have}"
        ) from None


# -- fixtures --------------------------------------------------------------------------------------------------


def _is_async_test(request: pytest.FixtureRequest) -> bool:
    function = getattr(request, "function", None)
    return function is not None and inspect.iscoroutinefunction(function)


def _needs_asyncio() -> None:
    import importlib.util

    if importlib.util.find_spec("pytest_asyncio") is None:
        pytest.fail("async tests with kalshi_sim need pytest-asyncio: pip install pytest-asyncio")


@pytest.fixture
def kalshi_sim(request: pytest.FixtureRequest) -> Iterator[Simulator | SimulatorThread]:
    """A running simulator with :data:`DEFAULT_SIM_OPTIONS`, stopped after the test.

    A :class:`~kalshi.sim.Simulator` on the test's loop in an async test, a :class:`SimulatorThread` in a
    plain one.
    """
    if _is_async_test(request):
        _needs_asyncio()
        yield request.getfixturevalue("_kalshi_sim_on_test_loop")
        return
    with SimulatorThread(**DEFAULT_SIM_OPTIONS) as sim:
        yield sim


@pytest.fixture
def kalshi_sim_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``factory(**options)``: an unstarted simulator with your options; those left running are stopped.

    Async tests get :class:`~kalshi.sim.Simulator` objects (``async with factory() as sim``), plain tests
    :class:`SimulatorThread` objects (``with factory() as sim``).
    """
    if _is_async_test(request):
        _needs_asyncio()
        yield request.getfixturevalue("_kalshi_sim_factory_on_test_loop")
        return
    made: list[SimulatorThread] = []

    def factory(**options: Any) -> SimulatorThread:
        sim = SimulatorThread(**{**DEFAULT_SIM_OPTIONS, **options})
        made.append(sim)
        return sim

    yield factory
    for sim in made:
        sim.stop()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - plain tests work without it
    pass
else:

    @pytest_asyncio.fixture
    async def _kalshi_sim_on_test_loop() -> AsyncIterator[Simulator]:
        from kalshi.sim import Simulator

        async with Simulator(**DEFAULT_SIM_OPTIONS) as sim:
            yield sim

    @pytest_asyncio.fixture
    async def _kalshi_sim_factory_on_test_loop() -> AsyncIterator[Callable[..., Simulator]]:
        from kalshi.sim import Simulator

        made: list[Simulator] = []

        def factory(**options: Any) -> Simulator:
            sim = Simulator(**{**DEFAULT_SIM_OPTIONS, **options})
            made.append(sim)
            return sim

        yield factory
        for sim in made:
            await sim.stop()
