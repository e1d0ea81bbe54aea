"""How a :class:`~kalshi.relay.client.RelayFeed` reads the relay's streams from Redis.

One read covers every stream: ``XREAD`` in fan-out, ``XREADGROUP`` in a consumer group (this member's own pending
entries first, then new ones). Reads go over their own :class:`~kalshi.relay.wire.RespConnection`, the hot path;
``XAUTOCLAIM`` of entries other members left unacknowledged goes through redis-py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import ResponseError

from kalshi.relay.resp import pack_command
from kalshi.relay.streams import StreamState
from kalshi.relay.wire import RespConnection

if TYPE_CHECKING:
    from kalshi.relay.client import RelayClient

__all__ = ["StreamReads"]

_READ_SLACK_S: Final = 10.0  # a blocking read's answer may take this much longer than its BLOCK


class StreamReads:
    """The Redis reads of one connected feed, with ``client``'s settings (``batch``, ``block_ms``, ``consumer``,
    ``claim_idle``) as they are at each read.

    Args:
        client: the feed's :class:`~kalshi.relay.client.RelayClient`.
        redis: the feed's redis-py client (for ``XAUTOCLAIM``).
    """

    def __init__(self, client: RelayClient, redis: Any) -> None:
        self.client = client
        self._redis = redis  # redis-py's reply types are unions of every protocol shape: read as Any
        self._conn: RespConnection | None = None  # opened by the first read, and again after a lost one

    async def read(self, states: Mapping[str, StreamState], group: str | None) -> list[Any]:
        """One read of every stream in ``states`` (fan-out when ``group`` is None): ``[[key, [[id, [field, value,
        ...]], ...]], ...]`` as hiredis parsed it. A group member's stream whose own pending entries are done
        reads new ones from then on (its ``last`` becomes ``">"``)."""
        streams = {key: state.last for key, state in states.items()}
        batch = self.client.batch
        block = self.client.block_ms
        if group is None:
            return await self._xread(("XREAD", "COUNT", batch, "BLOCK", block), streams, block)
        consumer = self.client.consumer
        assert consumer is not None
        head = ("XREADGROUP", "GROUP", group, consumer, "COUNT", batch)
        pending = {k: v for k, v in streams.items() if v != ">"}
        if pending:
            reply = await self._xread(head, pending, 0)
            for key, entries in reply:
                if not entries:
                    states[key.decode()].last = ">"  # own pending entries done: new ones next
            if any(entries for _, entries in reply):
                return reply
        return await self._xread((*head, "BLOCK", block), dict.fromkeys(streams, ">"), block)

    async def _xread(self, head: tuple[str | int, ...], streams: dict[str, str], block_ms: int) -> list[Any]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = await RespConnection.open(self.client.redis_url)
        payload = pack_command(*head, "STREAMS", *streams, *streams.values())
        try:
            # Bounded: a Redis that stopped answering (no RST) is a lost connection, not an endless wait.
            reply = await conn.call(payload, within=block_ms / 1000 + _READ_SLACK_S)
        except TimeoutError:
            conn.close()
            raise
        if reply is None:
            return []
        if not isinstance(reply, list):
            raise ResponseError(f"unexpected XREAD reply {reply!r:.80}")
        return reply

    async def claim(self, key: str, group: str) -> list[Any]:
        """Entries of stream ``key`` that members of ``group`` left unacknowledged for ``claim_idle`` seconds,
        now this member's (``XAUTOCLAIM``)."""
        consumer = self.client.consumer
        assert consumer is not None
        reply = await self._redis.xautoclaim(
            key, group, consumer, int(self.client.claim_idle * 1000), "0-0", count=self.client.batch
        )
        return reply[1] if reply and len(reply) > 1 else []

    def close(self) -> None:
        """Close the reads' connection (a later read opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
