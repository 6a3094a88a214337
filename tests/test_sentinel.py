"""``REDIS_URL``'s Sentinel form: parsed once, refused clearly when malformed, and followed
through a failover by every client without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from conftest import TEST_PLUGINS, wait_until
from falcon import testing
from sentinel_cluster import SERVICE, SentinelCluster

from jobcore.errors import ConfigurationError, StoreUnavailable
from jobcore.intake.submission import SubmissionParser
from jobcore.model.catalogue import load_job_types
from jobcore.redis_url import RedisUrlError, parse_sentinel_url, redacted
from jobcore.runtime import Runtime, build_runtime
from jobcore.settings import Settings
from jobcore.store import keys
from jobcore.store.connection import connect, connect_async
from jobcore_api.app import create_app

# --- the URL --------------------------------------------------------------------------------


def test_a_sentinel_url_names_sentinels_service_database_and_credentials():
    target = parse_sentinel_url(
        "redis+sentinel://app:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380/jobs/3"
        "?sentinel_password=guard&sentinel_username=watch"
    )
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380))
    assert (target.service, target.db) == ("jobs", 3)
    assert (target.username, target.password) == ("app", "s3cret")
    assert (target.sentinel_username, target.sentinel_password) == ("watch", "guard")
    assert not target.tls


def test_a_sentinel_url_with_only_a_password_and_tls_options():
    target = parse_sentinel_url(
        "rediss+sentinel://:pw@s1:26379/jobcore?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=optional"
    )
    assert target.username is None and target.password == "pw"
    assert target.db == 0 and target.tls
    assert (target.ssl_ca_certs, target.ssl_cert_reqs) == ("/etc/ca.pem", "optional")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://s1:26379", "names no service"),
        ("redis+sentinel://s1:26379/", "names no service"),
        ("redis+sentinel://s1:26379/jobcore/zero", "db a number"),
        ("redis+sentinel://s1:26379/jobcore/0/extra", "/service_name[/db]"),
        ("redis+sentinel://s1:notaport/jobcore", "is not host:port"),
        ("redis+sentinel://s1:0/jobcore", "1-65535"),
        ("redis+sentinel://s1:26379,,s2/jobcore", "names no Sentinel host"),
        (
            "redis+sentinel://:pw@s1/jobcore?sentinel_pasword=x",
            "unknown option(s) sentinel_pasword",
        ),
        ("rediss+sentinel://s1/jobcore?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("sentinel://s1/jobcore", "must start with one of"),
        ("redis://h:6379/0?foo=bar", "unknown option(s) foo"),
        ("redis://h:6379/0?socket_timeout=abc", "JOBCORE_REDIS_TIMEOUT"),
        ("redis://h:6379/0?retry_on_timeout=yes", "JOBCORE_REDIS_TIMEOUT"),
        ("redis://h:6379/0?max_connections=many", "max_connections must be"),
        ("redis://h:6379/0?protocol=4", "protocol must be"),
        ("redis://h:6379/0?ssl_cert_reqs=none", "only with rediss://"),
        ("rediss://h:6379/0?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("redis://h:6379/2147483648", "0-2147483647"),
        ("unix:///run/redis.sock?db=-1", "0-2147483647"),
    ],
)
def test_a_malformed_redis_url_stops_the_process_at_start_saying_what_to_fix(url, says):
    with pytest.raises(ConfigurationError, match="REDIS_URL") as refused:
        Settings.from_env({"REDIS_URL": url})
    assert says in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/3?client_name=jobcore&socket_keepalive=true&max_connections=64",
        "rediss://:pw@h:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false",
        "rediss://h/0?ssl_ca_certs=/etc/ca.pem&ssl_certfile=c.pem&ssl_keyfile=k.pem",
        "unix:///run/redis.sock?db=2&protocol=3",
    ],
)
def test_a_direct_url_takes_its_documented_options(url):
    assert Settings.from_env({"REDIS_URL": url}).redis_url == url


def test_a_refused_url_never_shows_its_passwords():
    url = "redis+sentinel://:hunter2@s1:26379/?sentinel_password=guard"
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({"REDIS_URL": url})
    assert "hunter2" not in str(refused.value) and "guard" not in str(refused.value)
    assert "hunter2" not in redacted("redis://:hunter2@host:6379/0")


def test_parse_refuses_a_direct_url():
    with pytest.raises(RedisUrlError):
        parse_sentinel_url("redis://127.0.0.1:6379/0")


# --- a real Sentinel --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelCluster]:
    """A primary, one replica and one Sentinel (a manual failover needs no quorum)."""
    built = SentinelCluster(tmp_path_factory.mktemp("sentinel"), replicas=1, sentinels=1)
    built.start()
    yield built
    built.stop()


@pytest.fixture(scope="module")
def sentinel_runtime(cluster: SentinelCluster, settings: Settings) -> Runtime:
    """Through the Sentinel, each write confirmed by the replica: Sentinel promotes a replica
    without waiting for it to catch up, so only a confirmed write is sure to survive."""
    own = replace(settings, redis_url=cluster.url, min_replicas_ack=1)
    return build_runtime(own, job_types=load_job_types(TEST_PLUGINS))


def submit(runtime: Runtime, **payload: object) -> str:
    parser = SubmissionParser(runtime.job_types)
    body = {"type": "dummy", "payload": payload}
    return runtime.jobs.submit(parser.parse(body, now_ms=int(time.time() * 1000))).job_id


def on_server(port: int, job_id: str) -> bool:
    return bool(redis.Redis(port=port).exists(keys.job(job_id)))


def test_every_client_reaches_the_primary_the_sentinels_name(cluster, sentinel_runtime):
    job_id = submit(sentinel_runtime)
    assert on_server(cluster.primary_port(), job_id)
    sentinel_runtime.broker.client.ping()  # the Dramatiq broker's client too


def test_the_async_client_reaches_the_same_primary(cluster, settings):
    own = replace(settings, redis_url=cluster.url)

    async def roundtrip() -> str:
        client = connect_async(own)
        try:
            await client.set("jobcore-test:async", "yes")
            return str(await client.get("jobcore-test:async"))
        finally:
            await client.aclose()

    assert asyncio.run(roundtrip()) == "yes"
    assert connect(own).get("jobcore-test:async") == "yes"


def test_after_a_failover_writes_go_to_the_new_primary_or_are_refused_never_lost(
    cluster, sentinel_runtime
):
    """The old primary stays up as a replica: a pooled connection to it meets READONLY."""
    api = testing.TestClient(create_app(sentinel_runtime.settings, sentinel_runtime))
    before = submit(sentinel_runtime)  # the pool holds connections to the old primary
    old = cluster.primary_port()

    def failover_started() -> bool:
        try:
            return bool(
                cluster.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", SERVICE)
            )
        except redis.ResponseError as exc:  # NOGOODSLAVE until it has the replica's INFO
            assert "NOGOODSLAVE" in str(exc) or "INPROG" in str(exc), exc
            return False

    wait_until(failover_started, timeout=30, interval=0.5, message="a failover to start")
    new = wait_until(
        lambda: cluster.primary_port() != old and cluster.primary_port(),
        timeout=30,
        message="the manual failover",
    )
    wait_until(
        lambda: redis.Redis(port=old).info("replication")["role"] == "slave",
        timeout=30,
        message="the old primary to be demoted",
    )
    accepted, refused = [], 0
    deadline = time.monotonic() + 20
    while len(accepted) < 20 and time.monotonic() < deadline:
        answer = api.simulate_post("/jobs", json={"type": "dummy", "payload": {}})
        if answer.status_code == 503:
            assert int(answer.headers["Retry-After"]) >= 1
            refused += 1
            time.sleep(0.1)
            continue
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json["jobId"])
    print(f"\nafter a manual failover: accepted={len(accepted)} answered_503={refused}")
    assert len(accepted) == 20
    assert all(on_server(new, job_id) for job_id in accepted)
    assert on_server(new, before)  # confirmed by the replica before the switch
    try:
        submit(sentinel_runtime)
    except StoreUnavailable:  # pragma: no cover - allowed, but not expected by now
        pytest.fail("the runtime did not follow the new primary")


def test_a_process_refuses_to_start_on_a_malformed_sentinel_url(tmp_path: Path, env):
    import subprocess

    from conftest import BIN

    bad = dict(env, REDIS_URL="redis+sentinel://s1:26379")
    done = subprocess.run(
        [str(BIN / "jobcore-worker")], env=bad, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 78
    assert "names no service" in done.stderr
