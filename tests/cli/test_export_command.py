"""``routeyard export`` against a real redis-server: duplicates in the log, and failures that say what went
wrong in one line without ever printing the Redis password."""

import asyncio
import json

import numpy as np
import pytest

from routeyard.cli.main import main
from routeyard.evaluation.live_aiq import ExploredAnswer, LiveTally, live_summary, summary_as_dict
from routeyard.gateway.redis_usage_log import RedisUsageLog, stream_fields
from routeyard.gateway.usage import ExplorationRecord
from routeyard.predictor.long_format import load_long_table
from routeyard.testing.redis_server import RedisServer
from routeyard.testing.server_thread import free_port
from tests.gateway.usage_records import answered, request_id

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    yield server
    server.stop()


def log_rated(url, count):
    async def scenario():
        log = RedisUsageLog(url, flush_interval=0.01)
        await log.start()
        for i in range(count):
            log.record(answered(i))
            log.feedback(request_id(i), 1.0)
        while log.buffered:
            await asyncio.sleep(0.01)
        await log.close()

    asyncio.run(scenario())


def test_a_request_logged_twice_is_exported_once_and_the_skip_is_reported(redis_server, tmp_path, capsys):
    log_rated(redis_server.url, 3)
    # a second record of request 1, as an older gateway wrote when Redis failed mid-write
    redis_server.client().xadd("routeyard:requests", stream_fields(answered(1, cost=0.5)))
    out = tmp_path / "traffic.csv"
    assert main(["export", "--redis", redis_server.url, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 rated requests of 1 backends" in printed
    assert "1 duplicate records of a request id (the first kept)" in printed
    table = load_long_table(out)
    assert sorted(table.sample_ids) == [request_id(i) for i in range(3)]
    assert table.cost[list(table.sample_ids).index(request_id(1)), 0] == pytest.approx(0.002)  # the first


def failure(args, capsys):
    assert main(["export", *args]) == 2
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    return captured.err


def test_failures_are_one_clear_line_without_the_password(redis_server, tmp_path, capsys):
    out = str(tmp_path / "traffic.csv")
    port = redis_server.port
    wrong = f"redis://:{PASSWORD}-old@127.0.0.1:{port}/0"
    assert f"cannot read the usage log at redis://***@127.0.0.1:{port}/0: AuthenticationError" in failure(
        ["--redis", wrong, "--out", out], capsys
    )
    nobody = free_port()
    unreachable = f"redis://default:{PASSWORD}@127.0.0.1:{nobody}/0"
    err = failure(["--redis", unreachable, "--out", out], capsys)
    assert f"redis://***@127.0.0.1:{nobody}/0" in err and "ConnectionError" in err
    err = failure(["--redis", f"redis://:{PASSWORD}@127.0.0.1:port/0", "--out", out], capsys)
    assert "cannot read the usage log at redis://***@127.0.0.1:port/0" in err
    redis_server.client().set("routeyard:requests", "not a stream")
    err = failure(["--redis", redis_server.url, "--out", out], capsys)
    assert "ResponseError: WRONGTYPE" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_output_that_cannot_be_written_is_a_clear_error(redis_server, tmp_path, capsys):
    log_rated(redis_server.url, 2)
    (tmp_path / "a-file").write_text("")
    err = failure(["--redis", redis_server.url, "--out", str(tmp_path / "a-file" / "traffic.csv")], capsys)
    assert err.startswith("routeyard: error: cannot write") and "Traceback" not in err


def explored_requests(count, seed=0):
    """``count`` explored requests of router-knn over three backends, as the gateway logs them: the
    chosen answer and one other, each graded (a few gradings failed), prompts kept."""
    rng = np.random.default_rng(seed)
    backends = ("cheap", "mid", "dear")
    records = []
    for i in range(count):
        chosen = int(rng.integers(3))
        other = [j for j in range(3) if j != chosen][int(rng.integers(2))]
        for j, is_chosen in ((chosen, True), (other, False)):
            quality = None if i % 17 == 5 and not is_chosen else float(rng.random() < 0.3 + 0.3 * j)
            records.append(
                ExplorationRecord(
                    request_id(i),
                    float(i),
                    "router-knn",
                    backends[j],
                    is_chosen,
                    1.0 if is_chosen else 0.5,
                    backends,
                    quality,
                    0.001 * 10**j,
                    0.0,
                    "0" * 64,
                    prompt_turns=(f"question {i}",),
                    response=f"answer {j}",
                )
            )
    return records


def test_explored_answers_export_for_train_and_replay_live_to_the_gateways_own_tally(
    redis_server, tmp_path, capsys
):
    records = explored_requests(60)

    async def log_them():
        log = RedisUsageLog(redis_server.url, flush_interval=0.01)
        await log.start()
        for record in records:
            log.explored(record)
        await log.close()

    asyncio.run(log_them())
    out = tmp_path / "explored.csv"
    assert main(["export", "--redis", redis_server.url, "--explored", "--out", str(out)]) == 0
    assert "wrote 60 explored requests" in capsys.readouterr().out
    table = load_long_table(out)  # what `train --format long` loads
    assert table.n_prompts == 60 and set(table.models) == {"cheap", "mid", "dear"}
    assert (~table.missing).sum() == 120 - 4  # 4 failed gradings are missing quality, not 0
    assert (
        main(["replay", "--data", str(out), "--format", "long", "--live", "--out", str(tmp_path / "r")]) == 0
    )
    live = json.loads((tmp_path / "r" / "live.json").read_text())["routers"]["router-knn"]
    gateway = LiveTally()  # what the gateway adds up as it explores: requests whose gradings both worked
    for chosen, other in zip(records[::2], records[1::2], strict=True):
        if chosen.quality is not None and other.quality is not None:
            gateway.observe(
                chosen.candidates,
                ExploredAnswer(chosen.backend, chosen.quality, chosen.cost_usd),
                ExploredAnswer(other.backend, other.quality, other.cost_usd, other.propensity),
            )
    assert live == json.loads(json.dumps(summary_as_dict(live_summary(gateway))))
    assert live["policy"]["quality"]["n"] == 56
