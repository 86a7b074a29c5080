"""Deltas on the data plane (issue 3), from a scripted control plane: a data plane at the delta's
base version applies only the changes, checks the resulting hash, journals the delta on disk
and acknowledges; a delta that does not follow on from what it serves, whose result hashes
differently, or that would leave a dangling reference is refused with the reason (the control
plane then sends the whole snapshot) and the old config keeps serving. After a restart with
no control plane, the data plane serves the snapshot plus its journal."""

import os
import zlib

import msgpack
import pytest
import requests

from cluster_harness import DataPlane, EchoUpstream, wait_for
from dp_harness import SNAPSHOT_FORMAT, config, config_hash, route, service, snapshot_envelope
from fake_cp import FakeControlPlane


@pytest.fixture(scope="module")
def upstream():
    u = EchoUpstream("delta")
    yield u
    u.close()


def delta(base_cfg, new_cfg, base_version, version, upserts, deletes, hash_override=None):
    """A delta envelope (proto/snapshot_delta.h) from base_cfg to new_cfg."""
    canon = {"upsert": {k: sorted(v, key=lambda r: r["id"]) for k, v in upserts.items()},
             "delete": {k: sorted(v) for k, v in deletes.items()}}
    env = {"type": "delta", "format": SNAPSHOT_FORMAT, "base_version": base_version,
           "base_hash": config_hash(base_cfg), "version": version,
           "hash": hash_override or config_hash(new_cfg),
           "payload": zlib.compress(msgpack.packb(canon, use_bin_type=True))}
    return msgpack.packb(env, use_bin_type=True)


def proxied(dp, path):
    try:
        return requests.get(dp.proxy_url + path, timeout=5).status_code
    except requests.RequestException:
        return None


def test_deltas_apply_refuse_and_survive_a_restart(tmp_path, certs, upstream):
    host, port = upstream.url.split("//")[1].split(":")
    svc = service("s", host, int(port))
    ra, rb, rc = route("a", svc, paths=["/a"]), route("b", svc, paths=["/b"]), \
        route("c", svc, paths=["/c"])
    v1 = config([svc], [ra])
    fake = FakeControlPlane(*certs).start()
    d = DataPlane(fake.port, *certs, workdir=str(tmp_path / "dp"))
    try:
        d.start()
        fake.expect("hello")
        env1, h1 = snapshot_envelope(v1, 1)
        fake.send(env1)
        assert fake.expect(("ack", "error"))["type"] == "ack"

        # v2 adds /b: applied as a delta, acknowledged with the new version and hash
        v2 = config([svc], [ra, rb])
        fake.send(delta(v1, v2, 1, 2, {"routes": [rb]}, {}))
        ack = fake.expect(("ack", "error"))
        assert ack["type"] == "ack" and ack["version"] == 2, ack
        assert ack["hash"] == config_hash(v2) == d.config_hash()
        assert proxied(d, "/b") == 200 and proxied(d, "/a") == 200
        assert "delta of 1 changes" in d.log()

        def refused(raw, words):
            fake.send(raw)
            m = fake.expect(("ack", "error"))
            assert m["type"] == "error", m
            assert any(w in m["message"] for w in words), m
            assert d.config_version() == 2 and d.config_hash() == config_hash(v2)
            assert proxied(d, "/b") == 200
            return m

        v3 = config([svc], [ra, rb, rc])
        # not from the version served
        refused(delta(v1, v3, 1, 3, {"routes": [rb, rc]}, {}), ("does not apply",))
        # the result hashes to something else than the control plane said
        refused(delta(v2, v3, 2, 3, {"routes": [rc]}, {}, hash_override="0" * 64),
                ("hash mismatch",))
        # deleting the service its routes still use
        m = refused(delta(v2, config([], [ra, rb]), 2, 3, {}, {"services": [svc["id"]]}),
                    ("which the delta deletes",))
        assert m["errors"][0]["entity"] == "routes", m
        # a route that references a service that does not exist
        orphan = route("o", {"id": "99999999-9999-4999-8999-999999999999"}, paths=["/o"])
        refused(delta(v2, config([svc], [ra, rb, orphan]), 2, 3, {"routes": [orphan]}, {}),
                ("does not exist",))

        # v3: /c added and /a removed, in one delta
        v3 = config([svc], [rb, rc])
        fake.send(delta(v2, v3, 2, 3, {"routes": [rc]}, {"routes": [ra["id"]]}))
        ack = fake.expect(("ack", "error"))
        assert ack["type"] == "ack" and ack["version"] == 3, ack
        assert proxied(d, "/c") == 200 and proxied(d, "/a") == 404
        journal = os.path.join(d.prefix, "config.journal")
        assert os.path.getsize(journal) > 0

        # restart with the control plane gone: the snapshot plus the journal's two deltas
        fake.stop()
        assert not d.stop()
        d.start()
        wait_for(lambda: d.config_version() == 3, what="v3 from the cache and journal")
        assert d.config_hash() == config_hash(v3)
        assert proxied(d, "/c") == 200 and proxied(d, "/a") == 404
        wait_for(lambda: "2 deltas replayed" in d.log(), what="the replay logged")
    finally:
        fake.stop()
        problems = d.stop()
        assert not problems, problems
