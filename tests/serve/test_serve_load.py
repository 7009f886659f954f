"""The limits that keep a shared server alive: a bounded queue under 20 concurrent decodes, bounded memory, expiry."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from dpfusion.serve.jobs import Busy, JobQueue
from dpfusion.serve.limits import BodyLimit
from dpfusion.serve.sessions import SessionStore
from dpfusion.serve.uploads import png_bytes
from tests.serve.conftest import STEPS

CONCURRENT = 20
MEMORY_BOUND_MB = 120


def _wave(client, sid: str, offset: int) -> list:
    def decode(i: int):
        tau = round((i + offset) / 100, 2)
        return tau, client.post(f"/api/sessions/{sid}/decode", data={"tau": tau, "steps": STEPS})

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(decode, range(CONCURRENT)))


def test_twenty_concurrent_decodes_finish_or_get_503_and_memory_stays_bounded(client_factory, model) -> None:
    client = client_factory(queue_size=4)
    sid = client.post("/api/compress", data={"sample": "true"}).json()["session"]
    data = client.get(f"/api/sessions/{sid}/dpf").content
    process = psutil.Process()
    before = process.memory_info().rss
    results = [r for offset in (0, 20) for r in _wave(client, sid, offset)]
    growth_mb = (process.memory_info().rss - before) / 2**20
    statuses = [response.status_code for _, response in results]
    print(f"\n{statuses.count(200)} decoded, {statuses.count(503)} busy of {len(results)}; RSS {growth_mb:+.0f} MB")
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 4 and statuses.count(503) >= 1
    for _, response in results:
        if response.status_code == 503:
            assert int(response.headers["Retry-After"]) >= 1 and "busy" in response.json()["error"]
    tau, decoded = next((tau, r) for tau, r in results if r.status_code == 200 and tau > 0)
    assert decoded.content == png_bytes(model.decompress(data, tau=tau, steps=STEPS))
    assert growth_mb < MEMORY_BOUND_MB
    assert client.post(f"/api/sessions/{sid}/decode", data={"tau": 0.5, "steps": STEPS}).status_code == 200


def test_queue_refuses_beyond_capacity_with_a_retry_hint() -> None:
    async def scenario() -> tuple[list, int]:
        queue = JobQueue(capacity=2)
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()

        def slow() -> str:
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()
            return "done"

        running = [asyncio.ensure_future(queue.run(slow)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(Busy) as busy:
            await queue.run(slow)
        gate.set()
        results = await asyncio.gather(*running)
        queue.close()
        return results, busy.value.retry_after

    results, retry_after = asyncio.run(scenario())
    assert results == ["done", "done"] and retry_after >= 1


def test_sessions_expire_and_the_oldest_go_first() -> None:
    now = [0.0]
    store = SessionStore(ttl_s=60, max_sessions=2, clock=lambda: now[0])
    a, b = store.add("A"), store.add("B")
    assert len({a, b}) == 2 and len(a) >= 20  # random ids of 128 bits
    now[0] = 50
    assert store.get(a) == "A"  # touching restarts its clock
    now[0] = 100
    assert store.get(b) is None and store.get(a) == "A"
    c, d = store.add("C"), store.add("D")
    assert store.get(a) is None and store.get(c) == "C" and store.get(d) == "D"
    now[0] = 1000
    assert store.get(c) is None and len(store) == 0


def test_a_body_without_length_or_over_the_limit_is_refused_unread() -> None:
    async def call(headers: list[tuple[bytes, bytes]]) -> tuple[int, dict]:
        sent = []

        async def app(scope, receive, send) -> None:
            raise AssertionError("the app must not see this request")

        async def send(message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "headers": headers}
        await BodyLimit(app, max_bytes=1000)(scope, None, send)
        return sent[0]["status"], json.loads(sent[1]["body"])

    assert asyncio.run(call([])) == (411, {"error": "request body needs a Content-Length header"})
    status, body = asyncio.run(call([(b"content-length", b"5000")]))
    assert status == 413 and "over the limit" in body["error"]
