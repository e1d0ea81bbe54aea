"""Reading a recording for a backtest: the market-data frames, in the order the exchange sent them.

Only the columns a backtest needs are read (``recv_ns``, ``session``, ``conn``, ``type``, ``frame``), and
frames of other types and markets are dropped by Arrow before Python sees them. Rows come in recording order
(the total order ``n`` of each session; files sort in time), which is the exchange's send order on each
connection, with ``recv_ns`` the clock of the replay (made non-decreasing).
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kalshi.record.reader import Recording
from kalshi.record.recorder import RecordingError

__all__ = ["MARKET_DATA_TYPES", "FrameBatch", "iter_frame_batches"]

MARKET_DATA_TYPES: Final = ("orderbook_snapshot", "orderbook_delta", "trade", "ticker", "market_lifecycle_v2")
_COLUMNS: Final = ["kind", "recv_ns", "session", "conn", "type", "market_ticker", "frame"]


class FrameBatch(NamedTuple):
    """Consecutive recorded frames as parallel lists: receive time (epoch ns, non-decreasing), session,
    connection number and the raw JSON (UTF-8 bytes: cheaper to make than ``str`` and decoded as fast)."""

    recv_ns: list[int]
    session: list[str]
    conn: list[int]
    frame: list[bytes]


def _repeated(column: pa.ChunkedArray) -> list[Any]:
    """A column as a list; a single-valued one (a batch of one connection, the common case) as one shared object."""
    n = len(column)
    if n and column.null_count == 0 and pc.all(pc.equal(column, column[0])).as_py():
        return [column[0].as_py()] * n
    values: list[Any] = column.to_pylist()
    return values


def iter_frame_batches(
    path: str | os.PathLike[str] | Recording,
    *,
    markets: Collection[str] | None = None,
    types: Collection[str] = MARKET_DATA_TYPES,
) -> Iterator[FrameBatch]:
    """The recorded frames of ``types`` (about ``markets`` if given), in recording order, a row group at a time.

    The next row group is read and filtered on a helper thread while the caller works on the current one
    (Parquet decoding and Arrow filters release the GIL).

    Raises:
        RecordingError: no recording there, or a file cannot be read.
    """
    files = path.files if isinstance(path, Recording) else Recording(Path(path)).files
    type_set = pa.array(list(types), type=pa.string())
    market_set = pa.array(sorted(markets), type=pa.string()) if markets is not None else None

    # The ticker column is read only to filter by it (decoding it costs about as much as the frames' own).
    columns = _COLUMNS if market_set is not None else [c for c in _COLUMNS if c != "market_ticker"]

    def load(file: Path, group: int) -> tuple[pa.Table, bool]:
        try:
            table = pq.ParquetFile(file).read_row_group(group, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise RecordingError(f"cannot read {file}: {exc}") from exc
        mask = pc.and_(pc.equal(table.column("kind"), "frame"), pc.is_in(table.column("type"), type_set))
        if market_set is not None:
            # Frames without a ticker (none of the market-data types today) are kept.
            tickers = table.column("market_ticker")
            mask = pc.and_(mask, pc.or_kleene(pc.is_null(tickers), pc.is_in(tickers, market_set)))
        mask = pc.and_kleene(mask, pc.is_valid(table.column("frame")))
        # Columns first, then rows: the filter copies only what is kept.
        table = table.select(["recv_ns", "session", "conn", "frame"]).filter(mask)
        # The frames as binary (a zero-copy cast, on this thread): their Python objects are then plain bytes.
        table = table.set_column(3, "frame", table.column("frame").cast(pa.binary()))
        recv = table.column("recv_ns").combine_chunks()
        ordered = len(recv) < 2 or pc.min(pc.pairwise_diff(recv)).as_py() >= 0
        return table, ordered

    jobs: list[tuple[Path, int]] = []
    for file in files:
        try:
            groups = pq.ParquetFile(file).metadata.num_row_groups
        except (OSError, pa.ArrowException) as exc:
            raise RecordingError(f"cannot read {file}: {exc}") from exc
        jobs.extend((file, g) for g in range(groups))
    last = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kalshi-backtest-read") as pool:
        pending: Future[tuple[pa.Table, bool]] | None = pool.submit(load, *jobs[0]) if jobs else None
        for index in range(len(jobs)):
            assert pending is not None
            table, ordered = pending.result()
            pending = pool.submit(load, *jobs[index + 1]) if index + 1 < len(jobs) else None
            if table.num_rows == 0:
                continue
            recv = table.column("recv_ns").to_pylist()
            if recv[0] < last or not ordered:
                # A clock step back on the recording machine: keep replay time monotonic.
                fixed = []
                for value in recv:
                    last = max(last, value)
                    fixed.append(last)
                recv = fixed
            last = recv[-1]
            yield FrameBatch(
                recv,
                _repeated(table.column("session")),
                _repeated(table.column("conn").fill_null(0)),
                table.column("frame").to_pylist(),
            )


def recorded_price_ranges(path: str | os.PathLike[str] | Recording) -> dict[str, list[Any]]:
    """The markets' ``price_ranges`` that ``kalshi record`` wrote at the start of its sessions (``markets``
    events), later sessions' over earlier ones. Reads two columns only.

    Raises:
        RecordingError: no recording there, or a file cannot be read.
    """
    files = path.files if isinstance(path, Recording) else Recording(Path(path)).files
    ranges: dict[str, list[Any]] = {}
    for file in files:
        try:
            table = pq.read_table(file, columns=["kind", "detail"])
        except (OSError, pa.ArrowException) as exc:
            raise RecordingError(f"cannot read {file}: {exc}") from exc
        table = table.filter(pc.equal(table.column("kind"), "markets"))
        for detail in table.column("detail").to_pylist():
            try:
                found = json.loads(detail or "{}").get("price_ranges", {})
            except (ValueError, AttributeError):
                continue  # an unreadable event: those markets' grids stay unknown
            if isinstance(found, dict):
                ranges.update(found)
    return ranges
