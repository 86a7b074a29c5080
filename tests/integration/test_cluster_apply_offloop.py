"""A data plane applies snapshots and deltas off its control loop (issue 3): decoding and
building a large config takes a while, and meanwhile /status, /status/ready (what Kubernetes
probes) and the cluster heartbeats must keep answering. /status names the version being
applied; messages that arrive during an apply are applied after it, in order."""

import time
import zlib

import msgpack
import pytest
import requests

from cluster_harness import DataPlane, EchoUpstream
from dp_harness import (SNAPSHOT_FORMAT, config, config_hash, route, service,
                        snapshot_envelope)
from fake_cp import FakeControlPlane
from test_cluster_delta_dp import proxied

BIG = 40000  # routes: enough that an apply spans many /status round trips on any machine


@pytest.fixture(scope="module")
def upstream():
    u = EchoUpstream("offloop")
    yield u
    u.close()


def delta_bytes(base_hash, new_hash, base_version, version, upserts):
    canon = {"upsert": upserts, "delete": {}}
    env = {"type": "delta", "format": SNAPSHOT_FORMAT, "base_version": base_version,
           "base_hash": base_hash, "version": version, "hash": new_hash,
           "payload": zlib.compress(msgpack.packb(canon, use_bin_type=True))}
    return msgpack.packb(env, use_bin_type=True)


def test_status_answers_while_a_large_snapshot_is_applied(tmp_path, certs, upstream):
    host, port = upstream.url.split("//")[1].split(":")
    svc = service("s", host, int(port))
    small = config([svc], [route("a", svc, paths=["/a"])])
    big_routes = [route("r%d" % i, svc, paths=["/r%d" % i]) for i in range(BIG)]
    big = config([svc], big_routes)
    extra = route("extra", svc, paths=["/extra"])
    bigger = config([svc], big_routes + [extra])
    h_big, h_bigger = config_hash(big), config_hash(bigger)  # built before: they take a while
    fake = FakeControlPlane(*certs).start()
    d = DataPlane(fake.port, *certs, workdir=str(tmp_path / "dp"))
    try:
        d.start()
        fake.expect("hello")
        env1, _ = snapshot_envelope(small, 1)
        fake.send(env1)
        assert fake.expect(("ack", "error"))["type"] == "ack"

        # The big snapshot, and right behind it a delta that builds on it. /status is polled
        # meanwhile; a fast machine may apply before the first poll lands, so up to 3 rounds.
        during, version = [], 1
        for _ in range(3):
            old = version
            env_big, _ = snapshot_envelope(big, version + 1)
            follow = delta_bytes(h_big, h_bigger, version + 1, version + 2,
                                 {"routes": [extra]})
            fake.send(env_big)
            fake.send(follow)
            version += 2
            deadline = time.time() + 120
            while time.time() < deadline:
                st = d.status()
                if st["configuration_version"] == version:
                    break
                if st["control_plane"]["applying_version"] is not None:
                    # answered mid-apply: the old config still serves and the node stays ready
                    during.append((st["control_plane"]["applying_version"] - old,
                                   st["configuration_version"] - old, d.ready()))
            # both applied, in the order sent, each acknowledged
            first, second = fake.expect(("ack", "error")), fake.expect(("ack", "error"))
            assert (first["type"], first["version"]) == ("ack", version - 1), first
            assert (second["type"], second["version"]) == ("ack", version), second
            if (1, 0, True) in during:
                break
        # (1, 0, True): the snapshot being applied while the version before it still served
        assert (1, 0, True) in during, during
        assert all(ready for _, _, ready in during), during
        assert d.config_hash() == h_bigger
        assert d.status()["control_plane"]["applying_version"] is None
        assert proxied(d, "/extra") == 200 and proxied(d, "/r%d" % (BIG - 1)) == 200
        assert proxied(d, "/a") == 404
    finally:
        fake.stop()
        problems = d.stop()
        assert not problems, problems


def test_status_without_a_control_plane_names_no_apply(tmp_path, certs):
    fake = FakeControlPlane(*certs).start()
    d = DataPlane(fake.port, *certs, workdir=str(tmp_path / "dp"))
    try:
        d.start()
        fake.expect("hello")
        st = requests.get(d.status_url + "/status", timeout=5).json()
        assert st["control_plane"]["applying_version"] is None
        assert st["configuration_version"] is None
    finally:
        fake.stop()
        problems = d.stop()
        assert not problems, problems
