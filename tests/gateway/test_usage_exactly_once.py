"""Each batch of the Redis usage log is applied exactly once: when Redis's answer is lost, and when Redis
is killed under load, right after it persisted a batch and before its answer arrived, and comes back
(append-only persistence, fsync every write)."""

import asyncio
import json
import time
from collections import Counter, defaultdict

import openai
import pytest

from routeyard.gateway.redis_usage_log import RedisUsageLog
from routeyard.gateway.usage import Attempt, RouteRecord
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import free_port
from tests.gateway.conftest import MATH, POEMS, redis_log
from tests.gateway.test_redis_usage_log import floats, gateway_on


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


class ReplyCutter:
    """A TCP proxy to Redis on 127.0.0.1 (on ``port``, 0: any). Once :attr:`armed`, it passes the next
    script call (EVALSHA) on to Redis, and when Redis answers it calls ``on_cut`` and cuts the client's
    connection instead of passing the answer back: Redis applied the batch, the writer cannot know."""

    def __init__(self, redis_port, port=0, on_cut=lambda: None):
        self.redis_port, self.wanted_port, self.on_cut = redis_port, port, on_cut
        self.armed = False
        self.cuts = 0

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.wanted_port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self):
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        except OSError:  # Redis is down: so is the proxy
            writer.transport.abort()
            return
        script_sent = False

        async def upward():
            nonlocal script_sent
            while data := await reader.read(1 << 16):
                script_sent = script_sent or (self.armed and b"EVALSHA" in data.upper())
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def downward():
            while data := await up_reader.read(1 << 16):
                if script_sent:  # the script's answer: drop it and the connection
                    self.armed, self.cuts = False, self.cuts + 1
                    self.on_cut()
                    writer.transport.abort()
                    up_writer.close()
                    return
                writer.write(data)
                await writer.drain()
            writer.close()

        await asyncio.gather(upward(), downward(), return_exceptions=True)


async def until_written(log, timeout=20.0):
    deadline = time.monotonic() + timeout
    while log.buffered and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert log.buffered == 0


def cascade_record(i):
    """A request that ``cheap`` answered badly and ``dear`` answered: two attempts, two costs."""
    attempts = (Attempt("cheap", "ok", 0.001, 0.01, 0.2), Attempt("dear", "ok", 0.03, 0.02, 0.9))
    return RouteRecord(
        f"req_{i:032x}",
        time.time(),
        "router-cascade",
        "dear",
        200,
        "0" * 64,
        cost_usd=0.031,
        attempts=attempts,
    )


def test_a_batch_whose_answer_is_lost_is_retried_and_applied_once(redis_server):
    async def scenario():
        cutter = await ReplyCutter(redis_server.port).start()
        log = RedisUsageLog(f"redis://127.0.0.1:{cutter.port}/0", flush_interval=0.01)
        await log.start()
        log.record(cascade_record(0))
        await until_written(log)  # the script is loaded: the next EVALSHA applies a batch
        cutter.armed = True
        for i in range(1, 21):
            log.record(cascade_record(i))
        log.feedback(f"req_{1:032x}", 0.5)
        await until_written(log)
        await log.close()
        await cutter.close()
        return log, cutter

    log, cutter = asyncio.run(scenario())
    assert cutter.cuts == 1 and log.replayed == 1  # applied, answer lost, retried, not applied again
    assert (log.written, log.dropped) == (22, 0)
    redis = redis_server.client()
    ids = [fields["request_id"] for _, fields in redis.xrange("routeyard:requests")]
    assert sorted(ids) == [f"req_{i:032x}" for i in range(21)]
    assert redis.xlen("routeyard:feedbacks") == 1
    assert floats(redis.hgetall("routeyard:spend_usd:backend")) == pytest.approx(
        {"cheap": 21 * 0.001, "dear": 21 * 0.03}
    )
    assert redis.hgetall("routeyard:requests:backend") == {"dear": "21"}
    assert floats(redis.hgetall("routeyard:spend_usd:router")) == pytest.approx(
        {"router-cascade": 21 * 0.031}
    )
    assert len(redis.keys("routeyard:batch:*")) <= 1  # each batch deletes the marker of the one before


async def load_through_a_crash(url, log, redis_server, proxy_port, workers=8):
    """Requests from ``workers`` concurrent clients to a gateway whose usage log reaches Redis through a
    :class:`ReplyCutter` on ``proxy_port``. Once records flow, Redis is killed (SIGKILL) right after it
    answered a batch (so it had persisted it) and before the answer reaches the gateway; then it is
    started again. Returns, once ``log`` is written, every reply and how many there were when Redis died."""
    cutter = await ReplyCutter(redis_server.port, proxy_port, on_cut=redis_server.kill).start()
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    replies, stop = [], asyncio.Event()

    async def worker(first):
        i = first
        while not stop.is_set():
            prompt = (MATH + POEMS)[i % 80]
            replies.append(
                await client.chat.completions.create(
                    model="router-knn", messages=[{"role": "user", "content": prompt}]
                )
            )
            i += workers

    tasks = [asyncio.create_task(worker(w)) for w in range(workers)]
    probe = redis_server.client()
    deadline = time.monotonic() + 30
    while await asyncio.to_thread(probe.xlen, "routeyard:requests") < 30 and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    cutter.armed = True  # kills Redis at the next batch's answer: while records are being written
    while not cutter.cuts and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
    at_kill = len(replies)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(redis_server.start)  # same port, same directory: its append-only file
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)
    await client.close()
    await until_written(log, timeout=30)  # through the proxy, which lives on this event loop
    await cutter.close()
    return replies, at_kill


def test_redis_killed_under_load_keeps_every_record_exactly_once(
    redis_server, upstream, artifact, tmp_path, monkeypatch
):
    proxy_port = free_port()
    proxied = f"redis://127.0.0.1:{proxy_port}/0"  # the log connects at its first write, after start
    app, server = gateway_on(redis_server, upstream, artifact, tmp_path, monkeypatch, redis_url=proxied)
    log = redis_log(app)
    try:
        replies, at_kill = asyncio.run(load_through_a_crash(server.url, log, redis_server, proxy_port))
    finally:
        server.__exit__(None, None, None)
    assert len(replies) > at_kill >= 30 and log.dropped == 0  # served all along
    assert log.replayed == 1  # the batch Redis persisted before dying was found applied, not applied again
    redis = redis_server.client()
    records = [fields for _, fields in redis.xrange("routeyard:requests")]
    assert len(records) == len(replies)  # no record lost, none written twice
    assert {f["request_id"] for f in records} == {r.model_extra["routing"]["request_id"] for r in replies}
    spend: defaultdict[tuple[str, str], float] = defaultdict(float)
    count: Counter[tuple[str, str]] = Counter()  # the counters, summed over the records
    for fields in records:
        cost = float(fields["cost_usd"])
        day = time.strftime("%Y-%m-%d", time.gmtime(float(fields["time"])))
        for counter, name in (("router", fields["router"]), ("day", day)):
            spend[counter, name] += cost
            count[counter, name] += 1
        count["backend", fields["backend"]] += 1
        for attempt in json.loads(fields["attempts"]):
            spend["backend", attempt["backend"]] += attempt["cost_usd"]
    for counter in ("backend", "router", "day"):
        expected_spend = {name: v for (c, name), v in spend.items() if c == counter}
        expected_count = {name: str(v) for (c, name), v in count.items() if c == counter}
        assert floats(redis.hgetall(f"routeyard:spend_usd:{counter}")) == pytest.approx(expected_spend)
        assert redis.hgetall(f"routeyard:requests:{counter}") == expected_count
    total = sum(r.model_extra["routing"]["cost_usd"] for r in replies)
    assert sum(floats(redis.hgetall("routeyard:spend_usd:router")).values()) == pytest.approx(total)
