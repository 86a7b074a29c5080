"""Cluster mutual TLS (issue 3): a data plane with the cluster's certificate gets the config; a
data plane with any other certificate (another self-signed one, an expired one, or in pki mode
one from another CA) is refused during the TLS handshake and never gets a byte of config, and
the control plane's log names the refused peer with a [warn].

Two kinds of peers are used: real `sluice-dp serve` processes, and a raw TLS client that trusts
the control plane but presents a wrong certificate (a real data plane with a wrong certificate
usually refuses the control plane first, so only the raw client shows the control plane's own
check)."""

import os
import socket
import ssl
import subprocess
import time

import pytest

from cluster_harness import DataPlane, cluster_certs, cluster_env, dp_binary, wait_for
from conftest import start_cp, stop_cp

UPGRADE = (b"GET /v1/outlet HTTP/1.1\r\nHost: sluice_cluster\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sluice-cluster\r\n\r\n")

CA_CNF = """[ ca ]
default_ca = c
[ c ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[ p ]
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
extendedKeyUsage = serverAuth,clientAuth
"""

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1", "-nodes"]
PAST = ("20200101000000Z", "20200201000000Z")


def openssl(args, cwd):
    r = subprocess.run(["openssl"] + args, cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), r.stderr))


class CertFactory:
    """Test certificates made with the openssl CLI: self-signed roots and leaves signed by
    them, with validity in the past when asked (`openssl ca -startdate/-enddate`)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "ca.cnf"), "w") as f:
            f.write(CA_CNF)
        open(os.path.join(directory, "index.txt"), "w").close()
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("01\n")

    def path(self, name):
        return os.path.join(self.dir, name + ".crt"), os.path.join(self.dir, name + ".key")

    def root(self, name, cn=None, expired=False):
        """A self-signed certificate usable as a CA (and as a shared-mode cluster cert)."""
        crt, key = self.path(name)
        if not expired:
            openssl(["req", "-x509"] + EC + ["-keyout", key, "-out", crt, "-subj",
                    "/CN=%s" % (cn or name), "-days", "30", "-addext",
                    "basicConstraints=critical,CA:TRUE", "-addext",
                    "keyUsage=critical,digitalSignature,keyCertSign", "-addext",
                    "extendedKeyUsage=serverAuth,clientAuth"], self.dir)
        else:
            csr = os.path.join(self.dir, name + ".csr")
            openssl(["req", "-new"] + EC + ["-keyout", key, "-out", csr, "-subj",
                    "/CN=%s" % (cn or name)], self.dir)
            openssl(["ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", key, "-in",
                     csr, "-out", crt, "-startdate", PAST[0], "-enddate", PAST[1],
                     "-extensions", "root", "-notext"], self.dir)
        os.chmod(key, 0o600)
        return crt, key

    def leaf(self, name, ca, dns, expired=False):
        crt, key = self.path(name)
        ca_crt, ca_key = self.path(ca)
        csr = os.path.join(self.dir, name + ".csr")
        openssl(["req", "-new"] + EC + ["-keyout", key, "-out", csr, "-subj", "/CN=%s" % dns,
                 "-addext", "subjectAltName=DNS:%s" % dns], self.dir)
        dates = (["-startdate", PAST[0], "-enddate", PAST[1]] if expired else ["-days", "30"])
        openssl(["ca", "-batch", "-config", "ca.cnf", "-cert", ca_crt, "-keyfile", ca_key, "-in",
                 csr, "-out", crt, "-extensions", "leaf", "-notext"] + dates, self.dir)
        os.chmod(key, 0o600)
        return crt, key


def tls_probe(port, cert, key, cafile, server_name="sluice_cluster", wait=3.0):
    """Connects like a data plane (trusting cafile, presenting cert) and asks for the outlet.
    Returns every byte the control plane sent before closing or going quiet for `wait` s."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile)
    ctx.load_cert_chain(cert, key)
    got = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=wait) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as s:
                s.sendall(UPGRADE)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
    except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
        pass
    return got


def data_planes(cp):
    r = cp.get("/clustering/data-planes")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def node_id(dp):
    path = os.path.join(dp.prefix, "node_id")
    return open(path).read().strip() if os.path.exists(path) else None


def add_service(cp, name):
    r = cp.post("/services", json={"name": name, "url": "http://127.0.0.1:9"})
    assert r.status_code == 201, r.text
    return cp.get("/status").json()["configuration_version"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return CertFactory(str(tmp_path_factory.mktemp("tlscerts")))


@pytest.fixture
def planes(pg, bootstrapped_db, tmp_path_factory):
    """Starts control planes and data planes with given settings; stops and checks them."""
    if not os.access(dp_binary(), os.X_OK):
        pytest.fail("%s is missing" % dp_binary())
    state = {"cps": [], "dps": []}

    def cp(extra_env):
        c = start_cp(pg, bootstrapped_db, tmp_path_factory, extra_env=extra_env)
        state["cps"].append(c)
        return c

    def dp(control_plane, cert, key, extra_env=None):
        d = DataPlane(control_plane.cluster_port, cert, key,
                      workdir=str(tmp_path_factory.mktemp("dp")), extra_env=extra_env)
        d.start()
        state["dps"].append(d)
        return d

    yield cp, dp
    problems = []
    for d in state["dps"]:
        problems += d.stop()
    for c in state["cps"]:
        stop_cp(c)
    assert not problems, "\n".join(problems[:50])


def assert_got_nothing(cp, dp, seconds=3.0):
    """The data plane stays without config and the control plane never lists it."""
    time.sleep(seconds)
    assert dp.config_version() == 0, dp.log()
    assert not dp.ready()
    nid = node_id(dp)
    assert all(p["id"] != nid for p in data_planes(cp)), data_planes(cp)


def test_shared_mode_right_cert_gets_config_others_refused(planes, certs, tmp_path_factory):
    cp_start, dp_start = planes
    crt, key = cluster_certs(str(tmp_path_factory.mktemp("shared") / "cluster"))
    cp = cp_start(cluster_env(crt, key))
    version = add_service(cp, "tls-shared")

    good = dp_start(cp, crt, key)
    wait_for(lambda: good.config_version() >= version, what="the data plane on version %d"
             % version)
    listed = wait_for(lambda: [p for p in data_planes(cp) if p["id"] == node_id(good)],
                      what="the data plane in /clustering/data-planes")
    assert listed[0]["connected"] is True
    assert listed[0]["ip"] == "127.0.0.1"

    other_crt, other_key = cluster_certs(str(tmp_path_factory.mktemp("other") / "cluster"))
    other = dp_start(cp, other_crt, other_key)
    expired_crt, expired_key = certs.root("shared-expired", cn="sluice_cluster", expired=True)
    expired = dp_start(cp, expired_crt, expired_key)
    assert_got_nothing(cp, other)
    assert_got_nothing(cp, expired, seconds=0)
    assert "refused" in other.log() or "cannot connect" in other.log(), other.log()
    assert "expired" in expired.log(), expired.log()

    # A peer that trusts the control plane but presents another certificate: refused by the
    # control plane itself, with a [warn] naming its address, and no 101 or config.
    assert tls_probe(cp.cluster_port, crt, key, crt).startswith(b"HTTP/1.1 101")
    for bad_crt, bad_key in ((other_crt, other_key), (expired_crt, expired_key)):
        before = cp.log().count("refused data plane 127.0.0.1")
        assert tls_probe(cp.cluster_port, bad_crt, bad_key, crt) == b""
        wait_for(lambda: cp.log().count("refused data plane 127.0.0.1") > before,
                 what="a [warn] naming the refused peer")
    warns = [line for line in cp.log().splitlines() if "refused data plane" in line]
    assert all("[warn]" in line for line in warns), warns
    assert good.config_version() >= version  # the good one was never disturbed


def test_pki_mode_ca_chain_and_server_name(planes, certs):
    cp_start, dp_start = planes
    ca = certs.root("pki-ca")
    certs.root("pki-other-ca")
    cp_crt, cp_key = certs.leaf("pki-cp", "pki-ca", "cp.sluice.test")
    dp_crt, dp_key = certs.leaf("pki-dp", "pki-ca", "dp1.sluice.test")
    old_crt, old_key = certs.leaf("pki-dp-expired", "pki-ca", "dp2.sluice.test", expired=True)
    alien_crt, alien_key = certs.leaf("pki-dp-alien", "pki-other-ca", "dp3.sluice.test")
    pki = {"SLUICE_CLUSTER_MTLS": "pki", "SLUICE_CLUSTER_CA_CERT": ca[0]}
    dp_env = dict(pki, SLUICE_CLUSTER_SERVER_NAME="cp.sluice.test")

    cp = cp_start(cluster_env(cp_crt, cp_key, pki))
    version = add_service(cp, "tls-pki")
    good = dp_start(cp, dp_crt, dp_key, dp_env)
    wait_for(lambda: good.config_version() >= version, what="the pki data plane on version %d"
             % version)

    expired = dp_start(cp, old_crt, old_key, dp_env)
    alien = dp_start(cp, alien_crt, alien_key, dp_env)
    wrong_name = dp_start(cp, dp_crt, dp_key, dict(pki, SLUICE_CLUSTER_SERVER_NAME="x.test"))
    assert_got_nothing(cp, expired)
    assert_got_nothing(cp, alien, seconds=0)
    assert_got_nothing(cp, wrong_name, seconds=0)
    wait_for(lambda: "certificate has expired" in cp.log(), what="the expired refusal logged")
    wait_for(lambda: "unable to get local issuer certificate" in cp.log(),
             what="the other-CA refusal logged")
    assert "hostname mismatch" in wrong_name.log(), wrong_name.log()
    assert good.config_version() >= version


def test_missing_cluster_cert_key_names_the_setting(pg, bootstrapped_db, tmp_path_factory):
    from sluice_harness import ControlPlane
    crt, _ = cluster_certs(str(tmp_path_factory.mktemp("nokey") / "cluster"))
    plane = ControlPlane(pg, bootstrapped_db, workdir=str(tmp_path_factory.mktemp("cp")),
                         extra_env={"SLUICE_CLUSTER_CERT": crt})
    with pytest.raises(RuntimeError) as e:
        plane.start(timeout=10)
    plane.stop()
    assert "cluster_cert_key" in str(e.value)


# ---- the hello handshake, driven by a raw websocket peer with the right certificate ----

def mp_pack(v):
    """Minimal msgpack writer for the hello map (str, int, list, dict, None)."""
    if v is None:
        return b"\xc0"
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        return b"\xd3" + v.to_bytes(8, "big", signed=True)
    if isinstance(v, str):
        b = v.encode()
        return b"\xdb" + len(b).to_bytes(4, "big") + b
    if isinstance(v, list):
        return b"\xdd" + len(v).to_bytes(4, "big") + b"".join(mp_pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + len(v).to_bytes(4, "big") + b"".join(
            mp_pack(k) + mp_pack(x) for k, x in v.items())
    raise TypeError(type(v))


def mp_map_strings(b):
    """Reads the top-level string/int fields of a msgpack map (enough for refused/snapshot)."""
    pos = [0]

    def take(n):
        out = b[pos[0]:pos[0] + n]
        pos[0] += n
        return out

    def read():
        c = take(1)[0]
        if c <= 0x7f:
            return c
        if 0x80 <= c <= 0x8f or c in (0xde, 0xdf):
            n = c & 0x0f if c <= 0x8f else int.from_bytes(take(2 if c == 0xde else 4), "big")
            return {read(): read() for _ in range(n)}
        if 0xa0 <= c <= 0xbf or c in (0xd9, 0xda, 0xdb):
            n = c & 0x1f if c <= 0xbf else int.from_bytes(take({0xd9: 1, 0xda: 2, 0xdb: 4}[c]),
                                                         "big")
            return take(n).decode()
        if c in (0xc4, 0xc5, 0xc6):
            return take(int.from_bytes(take({0xc4: 1, 0xc5: 2, 0xc6: 4}[c]), "big"))
        if 0xcc <= c <= 0xcf:
            return int.from_bytes(take(1 << (c - 0xcc)), "big")
        if 0xd0 <= c <= 0xd3:
            return int.from_bytes(take(1 << (c - 0xd0)), "big", signed=True)
        if c == 0xc0:
            return None
        raise ValueError("msgpack byte 0x%02x not handled by the test reader" % c)

    return read()


def sw_version():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "proto", "version.h")) as f:
        for line in f:
            if line.startswith("#define SL_VERSION "):
                return line.split('"')[1]
    raise RuntimeError("SL_VERSION not found")


def outlet(cp, crt, key, path="/v1/outlet"):
    import websocket
    ws = websocket.WebSocket(sslopt={"certfile": crt, "keyfile": key, "ca_certs": crt,
                                     "check_hostname": False, "cert_reqs": ssl.CERT_REQUIRED})
    ws.connect("wss://127.0.0.1:%d%s" % (cp.cluster_port, path), timeout=5,
               subprotocols=["sluice-cluster"])
    return ws


def hello(node, version, plugins):
    return mp_pack({"type": "hello", "node_id": node, "hostname": "probe", "version": version,
                    "plugins": plugins, "config_version": 0, "config_hash": ""})


def status_of(cp, node):
    for p in data_planes(cp):
        if p["id"] == node:
            return p["sync_status"]
    return None


def test_hello_version_and_plugin_compatibility(planes, tmp_path_factory):
    import websocket
    cp_start, _ = planes
    crt, key = cluster_certs(str(tmp_path_factory.mktemp("hello") / "cluster"))
    cp = cp_start(cluster_env(crt, key))
    r = cp.post("/plugins", json={"name": "cors"})
    assert r.status_code == 201, r.text
    version = cp.get("/status").json()["configuration_version"]
    major, minor = (int(x) for x in sw_version().split(".")[:2])

    # Newer minor than the control plane: refused with a reason, then closed.
    node = "6a0c3c4e-0000-4000-8000-000000000001"
    ws = outlet(cp, crt, key)
    ws.send_binary(hello(node, "%d.%d.0" % (major, minor + 1), ["cors"]))
    msg = mp_map_strings(ws.recv())
    assert msg["type"] == "refused" and msg["reason"] == "version_incompatible", msg
    with pytest.raises(websocket.WebSocketException):
        ws.recv()
    # The registry row is written by the control plane's writer thread: poll for it.
    wait_for(lambda: status_of(cp, node) == "version_incompatible",
             what="the refused data plane listed as version_incompatible")

    # Lacks a plugin the config uses: nothing sent, connection kept.
    node2 = "6a0c3c4e-0000-4000-8000-000000000002"
    ws = outlet(cp, crt, key)
    ws.send_binary(hello(node2, sw_version(), ["key-auth"]))
    wait_for(lambda: status_of(cp, node2) == "plugin_set_incompatible",
             what="plugin_set_incompatible")
    ws.settimeout(1.5)
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv()
    assert ws.connected
    ws.close()

    # Has it: gets the current snapshot at once.
    node3 = "6a0c3c4e-0000-4000-8000-000000000003"
    ws = outlet(cp, crt, key)
    ws.send_binary(hello(node3, sw_version(), ["cors", "key-auth"]))
    snap = mp_map_strings(ws.recv())
    assert snap["type"] == "snapshot" and snap["version"] == version, snap
    ws.close()

    # Only /v1/outlet is served.
    with pytest.raises(websocket.WebSocketException):
        outlet(cp, crt, key, "/v2/outlet")
