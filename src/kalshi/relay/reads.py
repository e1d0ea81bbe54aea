"""How a :class:`~kalshi.relay.client.RelayFeed` reads the relay's streams from Redis.

One read covers every stream: ``XREAD`` in fan-out, ``XREADGROUP`` in a consumer group (this member's own pending
entries first, then new ones). Reads go over their own :class:`~kalshi.relay.wire.RespConnection`, the hot path,
and so does ``XAUTOCLAIM`` of entries other members left unacknowledged (never of those this member holds still:
see :class:`~kalshi.relay.acks.GroupAcks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from redis.exceptions import ResponseError

from kalshi.relay.acks import GroupAcks
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
        acks: a group member's acknowledgements: what it holds (every entry a group read gets, until acknowledged).
    """

    def __init__(self, client: RelayClient, acks: GroupAcks) -> None:
        self.client = client
        self._acks = acks
        self.newest: dict[str, str] = {}
        """A group member's newest entry id read per stream key (where a vanished group is made again)."""
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
                self._acks.hold(key.decode(), entries)
                # The next read goes on after the last pending entry read (they stay pending until acknowledged:
                # from "0" again it would hand them out again); none left: new ones next.
                states[key.decode()].last = entries[-1][0].decode() if entries else ">"
            if any(entries for _, entries in reply):
                return reply
        reply = await self._xread((*head, "BLOCK", block), dict.fromkeys(streams, ">"), block)
        for key, entries in reply:
            if entries:
                name = key.decode()
                self._acks.hold(name, entries)
                self.newest[name] = entries[-1][0].decode()
        return reply

    async def _xread(self, head: tuple[str | int, ...], streams: dict[str, str], block_ms: int) -> list[Any]:
        payload = pack_command(*head, "STREAMS", *streams, *streams.values())
        [reply] = await self._send(payload, 1, block_ms / 1000 + _READ_SLACK_S)
        if reply is None:
            return []
        if not isinstance(reply, list):
            raise ResponseError(f"unexpected XREAD reply {reply!r:.80}")
        return reply

    async def _send(self, payload: bytes, replies: int, within: float) -> list[Any]:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = await RespConnection.open(self.client.redis_url)
        try:
            # Bounded: a Redis that stopped answering (no RST) is a lost connection, not an endless wait.
            async with asyncio.timeout(within):
                answers = await conn.send(payload, replies)
        except TimeoutError:
            conn.close()
            raise
        for answer in answers:
            if isinstance(answer, ResponseError):
                raise answer
        return answers

    async def claim(self, key: str, group: str) -> tuple[list[Any], int]:
        """Entries of stream ``key`` that members of ``group`` left unacknowledged for ``claim_idle`` seconds,
        now this member's (``XAUTOCLAIM``): ``([[id, [field, value, ...]], ...], gone)``, ``gone`` counting the
        claimed entries no longer in the stream (trimmed or deleted while pending). Those are acknowledged here:
        no member can ever take them. Entries this member holds still are left out: claiming them only tells the
        other members it is alive (their idle time starts again)."""
        consumer = self.client.consumer
        assert consumer is not None
        idle_ms = int(self.client.claim_idle * 1000)
        claim = pack_command("XAUTOCLAIM", key, group, consumer, idle_ms, "0-0", "COUNT", self.client.batch, "JUSTID")
        [reply] = await self._send(claim, 1, _READ_SLACK_S)
        ids: list[bytes] = reply[1] if isinstance(reply, list) and len(reply) > 1 else []
        # Redis 7 takes deleted entries out of the group itself, and lists them apart.
        gone = len(reply[2]) if isinstance(reply, list) and len(reply) > 2 else 0
        ids = [entry_id for entry_id in ids if not self._acks.holds(key, entry_id.decode())]
        if not ids:
            return [], gone
        # Read back by id rather than with the fields XAUTOCLAIM can return: Redis 6.2 claims deleted entries
        # too and returns them without their id, so they could be neither reported nor acknowledged.
        reads = b"".join(pack_command("XRANGE", key, entry_id, entry_id) for entry_id in ids)
        found = await self._send(reads, len(ids), _READ_SLACK_S)
        entries = [rows[0] for rows in found if rows]
        if len(entries) < len(ids):
            present = {entry_id for entry_id, _ in entries}
            lost = [entry_id for entry_id in ids if entry_id not in present]
            await self._send(pack_command("XACK", key, group, *lost), 1, _READ_SLACK_S)
            gone += len(lost)
        self._acks.hold(key, entries)
        return entries, gone

    def close(self) -> None:
        """Close the reads' connection (a later read opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
