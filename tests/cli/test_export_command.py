"""``routeyard export`` against a real redis-server: duplicates in the log, and failures that say what went
wrong in one line without ever printing the Redis password."""

import asyncio

import pytest

from routeyard.cli.main import main
from routeyard.gateway.redis_usage_log import RedisUsageLog, stream_fields
from routeyard.predictor.long_format import load_long_table
from routeyard.testing.mock_upstream import free_port
from routeyard.testing.redis_server import RedisServer
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
