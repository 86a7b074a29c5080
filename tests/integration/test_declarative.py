"""Kong declarative config in and out of the database (issue 7): `sluice-cp config db_import`
and `db_export` with a real Kong 3.0 file, checked through the Admin API, a data plane, and
the rows PostgreSQL holds."""

import json
import os
import stat
import subprocess

import pytest
import requests

from cluster_harness import DataPlane, EchoUpstream, cluster_certs, cluster_env, wait_for
from conftest import bootstrap, start_cp, stop_cp
from sluice_harness import cp_env, log_problems, run_cp

# Every table an import writes, and what identifies a row in it (for before/after dumps).
TABLES = ("certificates", "ca_certificates", "services", "routes", "consumers", "upstreams",
          "targets", "snis", "plugins", "keyauth_credentials", "basicauth_credentials", "acls")


def make_cert(directory, cn="shop.example.test", alt=("shop.example.test", "api.example.test")):
    """A self-signed certificate and key made with the openssl CLI: (cert PEM, key PEM)."""
    crt, key = os.path.join(directory, "c.pem"), os.path.join(directory, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=" + cn, "-addext",
                    "subjectAltName=" + ",".join("DNS:" + a for a in alt)],
                   check=True, capture_output=True)
    with open(crt) as c, open(key) as k:
        return c.read(), k.read()


def block(pem, indent):
    """A PEM as the lines of a YAML literal block scalar at the given indent."""
    return "\n".join(" " * indent + line for line in pem.strip().splitlines())


def kong_file(upstream_port, cert, key, plugins=True):
    """A Kong 3.0 file using every nesting the format has and references by name. The
    service goes through the upstream 'orders.internal', whose one target is upstream_port."""
    route_plugins = """    plugins:
    - name: key-auth
      config:
        key_names: [apikey]
""" if plugins else ""
    service_plugins = """  plugins:
  - name: rate-limiting
    config:
      minute: 1000
      policy: local
""" if plugins else ""
    global_plugins = """plugins:
- name: correlation-id
  config:
    header_name: X-Trace
""" if plugins else ""
    return """_format_version: "3.0"
_transform: true
services:
- name: orders
  host: orders.internal
  port: 80
  path: /api
  tags: [shop]
  routes:
  - name: orders-prefix
    paths: [/orders]
%(route_plugins)s  - name: orders-regex
    paths: ["~/v[0-9]+/orders$"]
    strip_path: false
%(service_plugins)s- name: billing
  url: http://127.0.0.1:%(port)d/billing
routes:
- name: billing-route
  service: billing
  hosts: [billing.example.test]
  paths: [/bill]
  methods: [GET, POST]
consumers:
- username: alice
  custom_id: c-100
  keyauth_credentials:
  - key: alice-secret-key
  basicauth_credentials:
  - username: alice-basic
    password: open-sesame
  acls:
  - group: admins
  - group: staff
- username: bob
keyauth_credentials:
- consumer: bob
  key: bob-secret-key
%(global_plugins)supstreams:
- name: orders.internal
  algorithm: round-robin
  targets:
  - target: 127.0.0.1:%(port)d
    weight: 50
certificates:
- cert: |
%(cert)s
  key: |
%(key)s
  tags: [tls]
  snis:
  - name: shop.example.test
  - api.example.test
""" % {"port": upstream_port, "cert": block(cert, 4), "key": block(key, 4),
       "route_plugins": route_plugins, "service_plugins": service_plugins,
       "global_plugins": global_plugins}


def checked(r):
    """A one-shot command's result, failing the test on a sanitizer or [alert] line."""
    bad = log_problems(r.output)
    assert not bad, r.output
    return r


def db_import(pg, db, path):
    return checked(run_cp(["config", "db_import", path], cp_env(pg, db)))


def db_export(pg, db, path):
    return checked(run_cp(["config", "db_export", path], cp_env(pg, db)))


def config_version(pg, db):
    return int(pg.psql("SELECT config_version FROM sluice_cluster", db=db))


def rows(pg, db, timestamps=True):
    """Every row of every entity table as JSON text, sorted: a full picture of the config."""
    out = {}
    for t in TABLES:
        drop = "" if timestamps else " - 'created_at' - 'updated_at'"
        text = pg.psql("SELECT coalesce(json_agg(j ORDER BY j->>'id'), '[]') FROM "
                       "(SELECT to_jsonb(x)%s AS j FROM %s x) s" % (drop, t), db=db)
        out[t] = json.loads(text)
    return out


def counts(pg, db):
    return {t: int(pg.psql("SELECT count(*) FROM %s" % t, db=db)) for t in TABLES}


@pytest.fixture
def cert(tmp_path):
    return make_cert(str(tmp_path))


@pytest.fixture
def upstream():
    u = EchoUpstream("orders")
    yield u
    u.close()


def write(tmp_path, name, text):
    path = str(tmp_path / name)
    with open(path, "w") as f:
        f.write(text)
    return path


def one(cp, path):
    r = cp.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def listing(cp, path):
    return one(cp, path)["data"]


# ------------------------------------------------------------------ import, Admin API view

def test_import_kong_file_every_entity_through_admin_api(pg, bootstrapped_db, tmp_path, cert,
                                                          control_plane_factory):
    path = write(tmp_path, "kong.yml", kong_file(9, *cert))
    before = config_version(pg, bootstrapped_db)
    r = db_import(pg, bootstrapped_db, path)
    assert r.returncode == 0, r.output
    assert "parse successful" in r.output and "import successful" in r.output, r.output
    assert config_version(pg, bootstrapped_db) > before

    cp = control_plane_factory(bootstrapped_db)

    # services: shorthand url split, defaults filled, tags kept
    orders = one(cp, "/services/orders")
    assert (orders["protocol"], orders["host"], orders["port"], orders["path"]) == \
        ("http", "orders.internal", 80, "/api")
    assert (orders["retries"], orders["connect_timeout"], orders["read_timeout"],
            orders["write_timeout"], orders["enabled"]) == (5, 60000, 60000, 60000, True)
    assert orders["tags"] == ["shop"]
    billing = one(cp, "/services/billing")
    assert (billing["host"], billing["port"], billing["path"]) == ("127.0.0.1", 9, "/billing")

    # routes: nested ones point at their service, the top-level one's name reference resolved
    routes = {r["name"]: r for r in listing(cp, "/services/orders/routes")}
    assert set(routes) == {"orders-prefix", "orders-regex"}
    assert routes["orders-prefix"]["paths"] == ["/orders"]
    assert routes["orders-regex"]["paths"] == ["~/v[0-9]+/orders$"]
    assert routes["orders-regex"]["strip_path"] is False
    pre = routes["orders-prefix"]
    assert pre["service"] == {"id": orders["id"]}
    assert (pre["protocols"], pre["strip_path"], pre["preserve_host"], pre["regex_priority"],
            pre["https_redirect_status_code"], pre["path_handling"]) == \
        (["http", "https"], True, False, 0, 426, "v0")
    bill = one(cp, "/routes/billing-route")
    assert bill["service"] == {"id": billing["id"]}
    assert bill["hosts"] == ["billing.example.test"]
    assert sorted(bill["methods"]) == ["GET", "POST"]

    # plugins at the three levels, config defaults filled from the plugin schemas
    plugins = {p["name"]: p for p in listing(cp, "/plugins")}
    assert set(plugins) == {"key-auth", "rate-limiting", "correlation-id"}
    ka, rl, ci = plugins["key-auth"], plugins["rate-limiting"], plugins["correlation-id"]
    assert ka["route"] == {"id": pre["id"]} and ka["service"] is None
    assert ka["config"]["key_names"] == ["apikey"]
    assert ka["config"]["hide_credentials"] is False  # a default
    assert rl["service"] == {"id": orders["id"]} and rl["route"] is None
    assert rl["config"]["minute"] == 1000 and rl["config"]["limit_by"] == "consumer"
    assert ci["service"] is None and ci["route"] is None and ci["consumer"] is None
    assert ci["config"]["header_name"] == "X-Trace"
    assert all(p["enabled"] is True for p in plugins.values())
    assert [p["name"] for p in listing(cp, "/routes/orders-prefix/plugins")] == ["key-auth"]

    # consumers and their credentials
    alice = one(cp, "/consumers/alice")
    assert alice["custom_id"] == "c-100"
    bob = one(cp, "/consumers/bob")
    keys = listing(cp, "/consumers/alice/key-auth")
    assert [k["key"] for k in keys] == ["alice-secret-key"]
    assert keys[0]["consumer"] == {"id": alice["id"]}
    assert [k["key"] for k in listing(cp, "/consumers/bob/key-auth")] == ["bob-secret-key"]
    basic = listing(cp, "/consumers/alice/basic-auth")
    assert [b["username"] for b in basic] == ["alice-basic"]
    assert basic[0]["password"] != "open-sesame"
    assert basic[0]["password"].startswith("$pbkdf2-sha256$"), basic[0]["password"]
    stored = pg.psql("SELECT password FROM basicauth_credentials", db=bootstrapped_db)
    assert stored == basic[0]["password"] and "open-sesame" not in stored
    assert sorted(a["group"] for a in listing(cp, "/consumers/alice/acls")) == \
        ["admins", "staff"]
    assert bob["username"] == "bob"

    # upstream with its target, defaults filled
    up = one(cp, "/upstreams/orders.internal")
    assert (up["algorithm"], up["slots"], up["hash_on"], up["hash_fallback"]) == \
        ("round-robin", 10000, "none", "none")
    targets = listing(cp, "/upstreams/orders.internal/targets")
    assert [(t["target"], t["weight"]) for t in targets] == [("127.0.0.1:9", 50)]
    assert targets[0]["upstream"] == {"id": up["id"]}

    # certificate with its SNIs, the PEM byte for byte (the block scalar keeps the newlines)
    certs = listing(cp, "/certificates")
    assert len(certs) == 1
    assert certs[0]["cert"].strip() == cert[0].strip()
    assert certs[0]["key"].strip() == cert[1].strip()
    assert certs[0]["tags"] == ["tls"]
    assert sorted(certs[0]["snis"]) == ["api.example.test", "shop.example.test"]
    for name in ("shop.example.test", "api.example.test"):
        assert one(cp, "/snis/" + name)["certificate"] == {"id": certs[0]["id"]}


def test_import_twice_changes_nothing(pg, bootstrapped_db, tmp_path, cert):
    """Same file again: same ids (name-based), nothing rewritten, the version stays; this
    includes the basic-auth password, which is stored as a salted hash."""
    path = write(tmp_path, "kong.yml", kong_file(9, *cert))
    assert db_import(pg, bootstrapped_db, path).returncode == 0
    version, before = config_version(pg, bootstrapped_db), rows(pg, bootstrapped_db)
    r = db_import(pg, bootstrapped_db, path)
    assert r.returncode == 0, r.output
    assert "0 entities written" in r.output, r.output
    assert config_version(pg, bootstrapped_db) == version
    assert rows(pg, bootstrapped_db) == before


def test_changed_password_is_rewritten(pg, bootstrapped_db, tmp_path, cert):
    text = kong_file(9, *cert)
    path = write(tmp_path, "kong.yml", text)
    assert db_import(pg, bootstrapped_db, path).returncode == 0
    old = pg.psql("SELECT password FROM basicauth_credentials", db=bootstrapped_db)
    version = config_version(pg, bootstrapped_db)
    path2 = write(tmp_path, "kong2.yml", text.replace("open-sesame", "new-secret"))
    r = db_import(pg, bootstrapped_db, path2)
    assert r.returncode == 0 and "1 entities written" in r.output, r.output
    new = pg.psql("SELECT password FROM basicauth_credentials", db=bootstrapped_db)
    assert new != old and new.startswith("$pbkdf2-sha256$")
    assert config_version(pg, bootstrapped_db) > version


def test_json_file_imports_the_same_rows(pg, bootstrapped_db, tmp_path, cert, sluice_cp_bin):
    """The same document as JSON gives the same rows as the YAML file (same ids)."""
    import yaml  # PyYAML reads the test's own YAML to produce the JSON twin
    text = kong_file(9, *cert)
    ypath = write(tmp_path, "kong.yml", text)
    jpath = write(tmp_path, "kong.json", json.dumps(yaml.safe_load(text), indent=1))
    r = db_import(pg, bootstrapped_db, jpath)
    assert r.returncode == 0, r.output
    from_json = rows(pg, bootstrapped_db, timestamps=False)
    assert len(from_json["routes"]) == 3 and len(from_json["snis"]) == 2

    other = bootstrap(pg, pg.create_database("yaml"))
    assert db_import(pg, other, ypath).returncode == 0
    from_yaml = rows(pg, other, timestamps=False)
    for t in TABLES:
        if t == "basicauth_credentials":  # salted: compare everything but the hash
            for a, b in zip(from_json[t], from_yaml[t]):
                a.pop("password"), b.pop("password")
        assert from_json[t] == from_yaml[t], t


# ------------------------------------------------------------------ the config reaches a DP

@pytest.fixture
def certs(tmp_path_factory):
    return cluster_certs(str(tmp_path_factory.mktemp("certs") / "cluster"))


@pytest.fixture
def cluster(pg, bootstrapped_db, tmp_path_factory, certs):
    started = {"cp": None, "dp": None}

    def start():
        cp = start_cp(pg, bootstrapped_db, tmp_path_factory, extra_env=cluster_env(*certs))
        started["cp"] = cp
        dp = DataPlane(cp.cluster_port, *certs, workdir=str(tmp_path_factory.mktemp("dp")))
        started["dp"] = dp
        dp.start()
        return cp, dp

    yield start
    problems = started["dp"].stop() if started["dp"] else []
    if started["cp"]:
        stop_cp(started["cp"])
    assert not problems, "\n".join(problems[:50])


def test_imported_routes_proxy_on_a_data_plane(pg, bootstrapped_db, tmp_path, cert, upstream,
                                               cluster):
    """Without plugins: prefix and regex routes, an upstream with a target, a service by URL;
    the data plane gets the imported config from the control plane and proxies with it."""
    path = write(tmp_path, "kong.yml", kong_file(upstream.port, *cert, plugins=False))
    r = db_import(pg, bootstrapped_db, path)
    assert r.returncode == 0, r.output
    cp, dp = cluster()
    version = cp.get("/status").json()["configuration_version"]
    wait_for(lambda: dp.config_version() >= version, what="the DP on the imported version")

    # prefix route through the upstream's target: strip_path, service path prepended
    r = requests.get(dp.proxy_url + "/orders/42", timeout=5)
    assert r.status_code == 200 and r.json()["path"] == "/api/42", r.text
    # regex route (anchored), strip_path false
    r = requests.get(dp.proxy_url + "/v2/orders", timeout=5)
    assert r.status_code == 200 and r.json()["path"] == "/api/v2/orders", r.text
    assert requests.get(dp.proxy_url + "/v2/orders/x", timeout=5).status_code == 404
    assert requests.get(dp.proxy_url + "/vX/orders", timeout=5).status_code == 404
    # top-level route referencing its service by name, with hosts and methods
    r = requests.get(dp.proxy_url + "/bill/7", headers={"Host": "billing.example.test"},
                     timeout=5)
    assert r.status_code == 200 and r.json()["path"] == "/billing/7", r.text
    assert requests.get(dp.proxy_url + "/bill/7", timeout=5).status_code == 404
    assert requests.delete(dp.proxy_url + "/bill/7", headers={"Host": "billing.example.test"},
                           timeout=5).status_code == 404


def test_imported_key_auth_on_a_data_plane(pg, bootstrapped_db, tmp_path, cert, upstream,
                                           cluster):
    """With plugins: the data plane enforces key-auth on the route when it has the plugin;
    a data plane without it is held back by the control plane (named sync status) and
    this test is skipped, saying so."""
    path = write(tmp_path, "kong.yml", kong_file(upstream.port, *cert))
    assert db_import(pg, bootstrapped_db, path).returncode == 0
    cp, dp = cluster()
    version = cp.get("/status").json()["configuration_version"]

    def settled():
        dps = cp.get("/clustering/data-planes").json()["data"]
        if dps and dps[0]["sync_status"] == "plugin_set_incompatible":
            return "incompatible"
        return dp.config_version() >= version and "synced"

    state = wait_for(settled, what="the DP synced or refused for a missing plugin")
    if state == "incompatible":
        assert "key-auth" in cp.log() or "lacks plugin" in cp.log(), cp.log()[-2000:]
        pytest.skip("this data plane has no key-auth/rate-limiting plugin yet: the control "
                    "plane withholds the config (sync_status plugin_set_incompatible)")
    r = requests.get(dp.proxy_url + "/orders/1", timeout=5)
    assert r.status_code == 401, r.text
    r = requests.get(dp.proxy_url + "/orders/1", headers={"apikey": "wrong"}, timeout=5)
    assert r.status_code == 401, r.text
    r = requests.get(dp.proxy_url + "/orders/1", headers={"apikey": "alice-secret-key"},
                     timeout=5)
    assert r.status_code == 200, r.text
    assert "X-Trace" in r.json()["headers"] or "x-trace" in r.json()["headers"]
    # the regex route has no key-auth
    assert requests.get(dp.proxy_url + "/v1/orders", timeout=5).status_code == 200


# ------------------------------------------------------------------ errors: all or nothing

def assert_refused(pg, db, path, *needles):
    before_rows, before_version = rows(pg, db), config_version(pg, db)
    r = db_import(pg, db, path)
    assert r.returncode != 0, r.output
    for n in needles:
        assert n in r.output, (n, r.output)
    assert rows(pg, db) == before_rows
    assert config_version(pg, db) == before_version
    return r.output


def seeded(pg, db, tmp_path, cert):
    """The database with the full file imported, so a refused import has rows to keep."""
    assert db_import(pg, db, write(tmp_path, "seed.yml", kong_file(9, *cert))).returncode == 0
    return counts(pg, db)


def test_bad_route_path_names_entity_and_field(pg, bootstrapped_db, tmp_path, cert):
    seeded(pg, bootstrapped_db, tmp_path, cert)
    path = write(tmp_path, "bad.yml", """_format_version: "3.0"
services:
- name: fresh
  url: http://127.0.0.1:9
  routes:
  - name: good
    paths: [/good]
  - name: broken
    paths: [no-leading-slash]
""")
    out = assert_refused(pg, bootstrapped_db, path, "services[0].routes[1]", "broken", "paths")
    assert "Nothing" in out or "not a valid declarative config" in out


def test_bad_regex_path_is_refused(pg, bootstrapped_db, tmp_path):
    path = write(tmp_path, "bad.yml", """_format_version: "3.0"
services:
- name: s1
  url: http://127.0.0.1:9
  routes:
  - name: r1
    paths: ["~/v[0-9+/orders"]
""")
    assert_refused(pg, bootstrapped_db, path, "routes[0]", "r1", "paths")


def test_missing_service_reference_names_it(pg, bootstrapped_db, tmp_path, cert):
    seeded(pg, bootstrapped_db, tmp_path, cert)
    path = write(tmp_path, "bad.yml", """_format_version: "3.0"
services:
- name: present
  url: http://127.0.0.1:9
routes:
- name: orphan
  service: absent
  paths: [/orphan]
""")
    assert_refused(pg, bootstrapped_db, path, "routes[0]", "orphan", "service", "absent")


def test_database_conflict_midway_rolls_back_everything(pg, bootstrapped_db, tmp_path, cert):
    """A clash only PostgreSQL sees (a consumer username already taken by a row with another
    id) after other rows of the file were written: the whole transaction is undone."""
    seeded(pg, bootstrapped_db, tmp_path, cert)
    pg.psql("INSERT INTO consumers (id, username, created_at, updated_at) VALUES "
            "('00000000-0000-4000-8000-000000000001', 'carol', now(), now())",
            db=bootstrapped_db)
    pg.psql("UPDATE sluice_cluster SET config_version = config_version + 1", db=bootstrapped_db)
    path = write(tmp_path, "clash.yml", """_format_version: "3.0"
services:
- name: brand-new
  url: http://127.0.0.1:9
  routes:
  - name: brand-new-route
    paths: [/brand-new]
consumers:
- username: carol
""")
    out = assert_refused(pg, bootstrapped_db, path, "carol")
    assert "Nothing was imported" in out, out
    assert pg.psql("SELECT count(*) FROM services WHERE name = 'brand-new'",
                   db=bootstrapped_db) == "0"


def test_yaml_syntax_error_names_the_line(pg, bootstrapped_db, tmp_path):
    path = write(tmp_path, "bad.yml", """_format_version: "3.0"
services:
- name: s1
  url: http://127.0.0.1:9
   routes: [oops
""")
    out = assert_refused(pg, bootstrapped_db, path)
    assert "line 5" in out, out
    assert len(out.strip().splitlines()) <= 3, out


def test_json_syntax_error_names_the_line(pg, bootstrapped_db, tmp_path):
    path = write(tmp_path, "bad.json", '{\n  "_format_version": "3.0",\n  "services": [\n'
                 '    {"name": "s1", "url": "http://127.0.0.1:9"},,\n  ]\n}\n')
    out = assert_refused(pg, bootstrapped_db, path)
    assert "line 4" in out, out


def test_bytes_that_are_not_utf8_name_the_line(pg, bootstrapped_db, tmp_path):
    path = str(tmp_path / "latin1.yml")
    with open(path, "wb") as f:
        f.write(b'_format_version: "3.0"\nservices:\n- name: caf\xe9\n  url: http://x\n')
    out = assert_refused(pg, bootstrapped_db, path)
    assert "line 3" in out and "UTF-8" in out, out


def test_format_version_is_required(pg, bootstrapped_db, tmp_path):
    path = write(tmp_path, "old.yml", "services:\n- name: s1\n  url: http://127.0.0.1:9\n")
    assert_refused(pg, bootstrapped_db, path, "_format_version")
    path = write(tmp_path, "old2.yml", '_format_version: "1.1"\nservices: []\n')
    assert_refused(pg, bootstrapped_db, path, "_format_version", "3.0")


def test_missing_file(pg, bootstrapped_db, tmp_path):
    r = db_import(pg, bootstrapped_db, str(tmp_path / "nope.yml"))
    assert r.returncode != 0 and "nope.yml" in r.output, r.output


# ------------------------------------------------------------------ export / import round trip

def test_export_import_round_trip(pg, bootstrapped_db, tmp_path, cert):
    assert db_import(pg, bootstrapped_db,
                     write(tmp_path, "kong.yml", kong_file(9, *cert))).returncode == 0
    out = str(tmp_path / "export.yml")
    r = db_export(pg, bootstrapped_db, out)
    assert r.returncode == 0, r.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with open(out) as f:
        exported = f.read()
    assert exported.startswith('_format_version: "3.0"'), exported[:200]
    assert "open-sesame" not in exported  # only the hash leaves the database

    # never overwrites: a second export to the same file fails and leaves it alone
    r = db_export(pg, bootstrapped_db, out)
    assert r.returncode != 0 and "export.yml" in r.output, r.output
    with open(out) as f:
        assert f.read() == exported

    # into the same database: a no-op
    version, before = config_version(pg, bootstrapped_db), rows(pg, bootstrapped_db)
    r = db_import(pg, bootstrapped_db, out)
    assert r.returncode == 0 and "0 entities written" in r.output, r.output
    assert config_version(pg, bootstrapped_db) == version
    assert rows(pg, bootstrapped_db) == before

    # into a fresh database: the same rows with the same ids (timestamps are the import's)
    fresh = bootstrap(pg, pg.create_database("fresh"))
    r = db_import(pg, fresh, out)
    assert r.returncode == 0, r.output
    assert rows(pg, fresh, timestamps=False) == rows(pg, bootstrapped_db, timestamps=False)

    # and that database exports the same document
    again = str(tmp_path / "again.yml")
    assert db_export(pg, fresh, again).returncode == 0
    with open(again) as f:
        assert f.read() == exported


def test_json_export_round_trip(pg, bootstrapped_db, tmp_path, cert):
    assert db_import(pg, bootstrapped_db,
                     write(tmp_path, "kong.yml", kong_file(9, *cert))).returncode == 0
    out = str(tmp_path / "export.json")
    assert db_export(pg, bootstrapped_db, out).returncode == 0
    with open(out) as f:
        doc = json.load(f)
    assert doc["_format_version"] == "3.0"
    assert {s["name"] for s in doc["services"]} == {"orders", "billing"}
    fresh = bootstrap(pg, pg.create_database("fresh"))
    assert db_import(pg, fresh, out).returncode == 0
    assert rows(pg, fresh, timestamps=False) == rows(pg, bootstrapped_db, timestamps=False)


def test_export_of_an_empty_database_imports(pg, bootstrapped_db, tmp_path):
    out = str(tmp_path / "empty.yml")
    r = db_export(pg, bootstrapped_db, out)
    assert r.returncode == 0, r.output
    version = config_version(pg, bootstrapped_db)
    r = db_import(pg, bootstrapped_db, out)
    assert r.returncode == 0, r.output
    assert config_version(pg, bootstrapped_db) == version


def test_name_used_twice_names_both_places(pg, bootstrapped_db, tmp_path):
    path = write(tmp_path, "dup.yml", """_format_version: "3.0"
services:
- name: twin
  url: http://127.0.0.1:9
- name: twin
  url: http://127.0.0.1:10
""")
    out = assert_refused(pg, bootstrapped_db, path)
    assert "services[1] (name 'twin')" in out and "also used by services[0]" in out, out
