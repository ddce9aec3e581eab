"""Authenticated identity end to end: real clients log in with SASL through Envoy to tansu running
with `--authentication`, and a TLS listener with client certificates made here gives the mTLS
principal. The per-client metrics must carry the identity the broker (or Envoy) verified, a refused
login must label nothing, and no secret may appear in Envoy's log or metrics.

tansu 0.6.0 authenticates with SCRAM-SHA-256 and SCRAM-SHA-512 only (it closes the connection on a
PLAIN handshake), in both forms: SaslAuthenticate frames (handshake v1) and raw tokens (handshake
v0, which kafka-python uses when told the broker is 0.10). PLAIN, OAUTHBEARER and GSSAPI are
covered by filter/tests/sasl.rs with frames built as clients send them.
"""
from __future__ import annotations

import gc
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from harness import Broker, Envoy, free_port

USERS = {"alice": "alice-Pa55-7d1e", "bob": "bob-Pa55-93c2"}
WRONG_PASSWORD = "mallory-Wr0ng-55aa"
SCRAM = {"SCRAM-SHA-256": "scram256", "SCRAM-SHA-512": "scram512"}


@pytest.fixture(scope="module")
def sasl_proxy_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def sasl_broker(workdir: Path, sasl_proxy_port: int):
    """tansu requiring authentication, with alice and bob as SCRAM users of both hashes. An
    authenticating broker refuses `tansu user create` (it does not log in), so the users are made
    first on the same SQLite storage without authentication, and the broker restarted with it."""
    storage = f"sqlite://tansu-auth-{sasl_proxy_port}.db"
    setup = Broker(free_port(), sasl_proxy_port, workdir, storage=storage)
    try:
        for user, password in USERS.items():
            for mechanism in SCRAM.values():
                subprocess.run([os.environ["TANSU"], "user", "create", user, password, "--broker",
                                f"tcp://127.0.0.1:{setup.port}", "--mechanism", mechanism],
                               check=True, capture_output=True, timeout=60)
    finally:
        setup.stop()
    b = Broker(free_port(), sasl_proxy_port, workdir, extra_args=["--authentication"], storage=storage)
    yield b
    b.stop()


@pytest.fixture
def sasl_envoy(request, workdir: Path, sasl_proxy_port: int, sasl_broker: Broker):
    marker = request.node.get_closest_marker("filter_config")
    e = Envoy(sasl_proxy_port, sasl_broker.port, workdir, filter_config=marker.args[0] if marker else None)
    yield e
    e.stop()


def confluent_conf(port: int, mechanism: str, user: str, password: str, client_id: str) -> dict:
    return {
        "bootstrap.servers": f"127.0.0.1:{port}", "client.id": client_id,
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
        "sasl.username": user, "sasl.password": password,
    }


def create_topic(conf: dict, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    del admin


def confluent_produce(conf: dict, topic: str, n: int) -> None:
    from confluent_kafka import Producer
    producer = Producer({**conf, "acks": "all", "linger.ms": 5})
    errors = []
    for i in range(n):
        producer.produce(topic, value=f"record-{i}".encode(), on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(30) == 0
    assert not errors, errors
    del producer
    gc.collect()


def kafka_python_produce(port: int, mechanism: str, user: str, password: str, topic: str, n: int,
                         **extra) -> None:
    """Produces `n` records; a record the broker (or the policy) refuses raises its error."""
    from kafka import KafkaProducer
    extra.setdefault("client_id", "identity-kafka-python")
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=password,
                             acks="all", **extra)
    try:
        futures = [producer.send(topic, f"record-{i}".encode()) for i in range(n)]
        producer.flush(30)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close(5)


def refused_login(conf: dict) -> str:
    """Tries to list topics with a wrong password; returns the error the client reported."""
    from confluent_kafka.admin import AdminClient
    errors = []
    admin = AdminClient({**conf, "error_cb": lambda err: errors.append(err)})
    with pytest.raises(Exception):
        admin.list_topics(timeout=5)
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        admin.poll(0.2)
    del admin
    gc.collect()
    return " ".join(str(e) for e in errors)


def test_scram_users_label_per_client_metrics(sasl_envoy, sasl_proxy_port):
    port = sasl_proxy_port
    topic = f"identity-{uuid.uuid4().hex[:8]}"
    alice = confluent_conf(port, "SCRAM-SHA-256", "alice", USERS["alice"], "identity-confluent")
    create_topic(alice, topic)
    confluent_produce(alice, topic, 40)
    kafka_python_produce(port, "SCRAM-SHA-512", "bob", USERS["bob"], topic, 25)

    m = sasl_envoy.settled_metrics()
    produced = m.by_label("kafka_produced_records_total", "identity")
    assert produced == {"sasl:alice": 40, "sasl:bob": 25}, produced
    # Every request after the login carries the user; only the SASL exchange itself (and the
    # ApiVersions before it) is labelled with the client id.
    before_login = {"SaslHandshake", "SaslAuthenticate", "ApiVersions"}
    for labels, value in ((s[1], s[2]) for s in m.samples if s[0] == "kafka_requests_total"):
        if labels["api"] not in before_login:
            assert labels["identity"].startswith("sasl:"), (labels, value)
    assert m.get("kafka_sasl_authentications_total", mechanism="SCRAM-SHA-256", result="success") >= 1
    assert m.get("kafka_sasl_authentications_total", mechanism="SCRAM-SHA-512", result="success") >= 1
    assert m.get("kafka_sasl_authentications_total", result="failure") == 0


@pytest.mark.filter_config({"policy": {"rules": [
    {"name": "bob-not-payments", "match": {"sasl_user": {"exact": "bob"}, "apis": ["Produce"],
                                          "topics": [{"prefix": "payments."}]}, "deny": True}]}})
def test_a_policy_rule_keyed_on_the_sasl_user_allows_one_user_and_denies_another(sasl_envoy, sasl_proxy_port):
    """The SASL user the broker accepted is a security boundary (a client id is not): bob may not
    write payments topics, alice may; both send the same client id."""
    from kafka.errors import KafkaError as PyKafkaError
    port = sasl_proxy_port
    topic = f"payments.{uuid.uuid4().hex[:8]}"
    alice = confluent_conf(port, "SCRAM-SHA-256", "alice", USERS["alice"], "shared-client-id")
    create_topic(alice, topic)
    confluent_produce(alice, topic, 10)
    with pytest.raises(PyKafkaError) as failure:
        kafka_python_produce(port, "SCRAM-SHA-512", "bob", USERS["bob"], topic, 1, retries=0, client_id="shared-client-id",
                             max_block_ms=10_000)
    assert getattr(failure.value, "errno", None) == 29, repr(failure.value)  # TOPIC_AUTHORIZATION_FAILED

    m = sasl_envoy.settled_metrics()
    assert m.by_label("kafka_produced_records_total", "identity") == {"sasl:alice": 10}
    assert m.get("kafka_policy_decisions_total", rule="bob-not-payments", action="refused", identity="sasl:bob") >= 1
    assert m.get("kafka_policy_decisions_total", identity="sasl:alice") == 0


def test_v0_raw_sasl_tokens_pass_through_and_label(sasl_envoy, sasl_proxy_port):
    """kafka-python told the broker is 0.10 sends SaslHandshake v0, then raw SCRAM tokens that are
    not Kafka frames; the filter must not read them as requests, and must still learn the user.
    (It lists topics: tansu cannot read the magic-1 message sets a 0.10 producer would send.)"""
    from kafka import KafkaAdminClient
    port = sasl_proxy_port
    topic = f"identity-{uuid.uuid4().hex[:8]}"
    create_topic(confluent_conf(port, "SCRAM-SHA-256", "alice", USERS["alice"], "identity-admin"), topic)
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", client_id="identity-v0", api_version=(0, 10, 2),
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                             sasl_plain_username="bob", sasl_plain_password=USERS["bob"])
    assert topic in admin.list_topics()
    admin.close()

    m = sasl_envoy.settled_metrics()
    assert m.get("kafka_requests_total", api="SaslHandshake", version="0", client_id="identity-v0") >= 1
    assert m.get("kafka_requests_total", api="SaslAuthenticate", client_id="identity-v0") == 0  # raw tokens instead
    assert m.get("kafka_requests_total", api="Metadata", client_id="identity-v0", identity="sasl:bob") >= 1
    assert m.get("kafka_sasl_authentications_total", mechanism="SCRAM-SHA-256", result="success") >= 2
    assert m.get("kafka_undecodable_frames_total") == 0
    assert m.get("kafka_unmatched_responses_total") == 0
    assert m.get("kafka_requests_total", api="unknown") == 0


def test_refused_login_labels_nothing_and_no_secret_leaks(sasl_envoy, sasl_proxy_port):
    port = sasl_proxy_port
    error = refused_login(confluent_conf(port, "SCRAM-SHA-512", "alice", WRONG_PASSWORD, "identity-refused"))
    assert "Authentication failed" in error or "SASL" in error, error
    ok = confluent_conf(port, "SCRAM-SHA-512", "bob", USERS["bob"], "identity-ok")
    topic = f"identity-{uuid.uuid4().hex[:8]}"
    create_topic(ok, topic)
    confluent_produce(ok, topic, 5)

    m = sasl_envoy.settled_metrics()
    assert m.get("kafka_sasl_authentications_total", mechanism="SCRAM-SHA-512", result="failure") >= 1
    identities = {labels.get("identity") for name, labels, _ in m.samples if "identity" in labels}
    assert "sasl:alice" not in identities, identities
    assert "sasl:bob" in identities, identities
    # The refused connection's requests stayed labelled with its client id.
    assert m.get("kafka_requests_total", api="SaslAuthenticate", client_id="identity-refused") >= 1

    stats = sasl_envoy.admin("stats?format=json") + sasl_envoy.admin("stats/prometheus")
    log = sasl_envoy.log_text()
    assert "SASL SCRAM-SHA-512 authentication refused" in log  # the filter did log, at info
    for secret in (*USERS.values(), WRONG_PASSWORD):
        assert secret not in log, f"a password appears in Envoy's log ({sasl_envoy.proc.log_path})"
        assert secret not in stats, "a password appears in Envoy's stats"


# --- mTLS: the verified peer principal --------------------------------------------------------

SPIFFE = "spiffe://cluster.local/ns/shop/sa/orders"


def make_certs(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate whose URI SAN is a
    SPIFFE id, as Istio issues them."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=kafka-lens-test-ca")
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1"), ("client", f"subjectAltName=URI:{SPIFFE}")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def terminate_mtls(certs: dict[str, Path]):
    def transform(config: dict) -> dict:
        chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
        chain["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": True,
                "common_tls_context": {
                    "tls_certificates": [{"certificate_chain": {"filename": str(certs["server.pem"])},
                                          "private_key": {"filename": str(certs["server.key"])}}],
                    "validation_context": {"trusted_ca": {"filename": str(certs["ca.pem"])}},
                },
            },
        }
        return config
    return transform


MTLS_POLICY = {"policy": {"rules": [
    {"name": "orders-sa-not-payments", "match": {"principal": {"exact": SPIFFE}, "apis": ["Produce"],
                                                 "topics": [{"prefix": "payments."}]}, "deny": True}]}}


def test_mtls_peer_principal_is_the_identity(workdir, tmp_path, broker):
    """Envoy terminates TLS with client certificates (as the broker-side Istio sidecar does); the
    filter reads the verified URI SAN from Envoy's connection properties, and a policy rule keyed on
    it applies."""
    from confluent_kafka import KafkaError, Producer
    certs = make_certs(tmp_path)
    port = free_port()
    mtls_broker = Broker(free_port(), port, workdir)
    envoy = Envoy(port, mtls_broker.port, workdir, transform=terminate_mtls(certs), filter_config=MTLS_POLICY)
    try:
        conf = {
            "bootstrap.servers": f"127.0.0.1:{port}", "client.id": "identity-mtls",
            "security.protocol": "SSL", "ssl.ca.location": str(certs["ca.pem"]),
            "ssl.certificate.location": str(certs["client.pem"]), "ssl.key.location": str(certs["client.key"]),
        }
        topic = f"identity-{uuid.uuid4().hex[:8]}"
        create_topic(conf, topic)
        confluent_produce(conf, topic, 12)
        m = envoy.settled_metrics()
        assert m.by_label("kafka_produced_records_total", "identity") == {f"mtls:{SPIFFE}": 12}
        assert m.get("kafka_requests_total", api="Produce", client_id="identity-mtls", identity=f"mtls:{SPIFFE}") >= 1
        assert m.get("kafka_non_kafka_connections_total") == 0  # Envoy decrypted it

        # The principal may not write payments topics.
        payments = f"payments.{uuid.uuid4().hex[:8]}"
        create_topic(conf, payments)
        errors = []
        producer = Producer({**conf, "message.send.max.retries": 0})
        for i in range(3):
            producer.produce(payments, value=b"denied", on_delivery=lambda err, _m: errors.append(err))
        assert producer.flush(30) == 0
        del producer
        gc.collect()
        assert [e.code() if e else None for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3, errors
        m = envoy.settled_metrics()
        assert m.get("kafka_policy_decisions_total", rule="orders-sa-not-payments", action="refused",
                     identity=f"mtls:{SPIFFE}", topic=payments) >= 1
        assert m.by_label("kafka_produced_records_total", "identity") == {f"mtls:{SPIFFE}": 12}
    finally:
        envoy.stop()
        mtls_broker.stop()
