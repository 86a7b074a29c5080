"""The deploy files (deploy/Dockerfile, deploy/docker-compose.yml, deploy/kubernetes/) against the
contract: what `kubectl kustomize` renders, what compose declares, and whether the binaries really
start with exactly the environment those files give them.

Names of settings are read from proto/settings.c (the table both binaries load), so a manifest
that sets a misspelt or removed SLUICE_* variable fails here instead of in a user's cluster
("unknown setting" at start)."""

import base64
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import requests
import yaml

from sluice_harness import base_env, bin_dir, free_port, log_problems, repo_root

DEPLOY = os.path.join(repo_root(), "deploy")
KUSTOMIZE_DIR = os.path.join(DEPLOY, "kubernetes")
COMPOSE_FILE = os.path.join(DEPLOY, "docker-compose.yml")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")

# The user the Dockerfile creates; pods and compose must run as it.
IMAGE_UID = 10001
# sluice-dp drains in-flight requests for up to this long after SIGTERM (ARCHITECTURE/DP).
DP_DRAIN_SECONDS = 30


# ---- the settings table ------------------------------------------------------------------------

def settings_table():
    """{name: kind} from the sl_setting_defs table in proto/settings.c."""
    with open(os.path.join(repo_root(), "proto", "settings.c")) as f:
        src = f.read()
    start = src.index("sl_setting_defs[] = {")
    body = src[start:src.index("};", start)]
    table = dict(re.findall(r'\{\s*"([a-z0-9_]+)",\s*(?:NULL|"[^"]*"),\s*(SL_SET_[A-Z_]+)', body))
    assert len(table) >= 20, "could not parse proto/settings.c: %r" % table
    return table


SETTINGS = settings_table()


def env_setting(name):
    """The setting a SLUICE_<NAME> variable sets, or None when the name is not SLUICE_*."""
    return name[len("SLUICE_"):].lower() if name.startswith("SLUICE_") else None


def unknown_settings(env_names):
    return sorted(n for n in env_names if env_setting(n) is not None and
                  env_setting(n) not in SETTINGS)


# ---- kubectl kustomize -------------------------------------------------------------------------

def make_throwaway_certs(out_dir):
    """cluster.crt/cluster.key as the README says (`sluice-cp certs generate`), or with openssl
    when sluice-cp is not built: the renders only need files to exist."""
    cp = os.path.join(bin_dir(), "sluice-cp")
    if os.access(cp, os.X_OK):
        r = subprocess.run([cp, "certs", "generate", "--out", out_dir], env=base_env(),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        return
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-384", "-nodes", "-days", "1", "-subj", "/CN=sluice_cluster",
                    "-keyout", os.path.join(out_dir, "cluster.key"),
                    "-out", os.path.join(out_dir, "cluster.crt")],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def kube(tmp_path_factory):
    """The rendered base: {"docs": [...], "certs": dir with the throwaway cert files}."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (Debian package kubernetes-client; `make deps`): "
                    "cannot render deploy/kubernetes")
    work = tmp_path_factory.mktemp("kustomize")
    base = os.path.join(str(work), "kubernetes")
    shutil.copytree(KUSTOMIZE_DIR, base,
                    ignore=shutil.ignore_patterns("cluster.crt", "cluster.key"))
    make_throwaway_certs(os.path.join(base, "certs"))
    r = subprocess.run([kubectl, "kustomize", base], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "kubectl kustomize deploy/kubernetes failed:\n" + r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    return {"docs": docs, "certs": os.path.join(base, "certs")}


def objects(kube, kind):
    return [d for d in kube["docs"] if d["kind"] == kind]


def one(kube, kind, name=None, component=None):
    found = [d for d in objects(kube, kind)
             if (name is None or d["metadata"]["name"] == name) and
             (component is None or
              d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, "expected one %s %s, rendered: %s" % (
        kind, name or component, [d["metadata"]["name"] for d in objects(kube, kind)])
    return found[0]


def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def pod_labels(obj):
    return obj["spec"]["template"]["metadata"].get("labels", {})


def workloads(kube):
    return [d for d in kube["docs"] if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def sluice_workloads(kube):
    """Workloads running the Sluice image (not PostgreSQL)."""
    return [w for w in workloads(kube)
            if any(c["image"].split("/")[-1].startswith("sluice")
                   for c in pod_spec(w)["containers"])]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def env_list(container):
    return container.get("env", [])


def env_value(container, name):
    for e in env_list(container):
        if e["name"] == name:
            return e.get("value")
    return None


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def container_port(container, port):
    """A probe's or Service's port (number or name) as a number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError("port %r is not declared by container %s" % (port, container["name"]))


def listen_ports(value):
    return [int(p) for p in re.findall(r":(\d+)(?:\s+ssl)?\s*(?:,|$)", value)]


def dp_deployment(kube):
    return one(kube, "Deployment", component="data-plane")


def cp_deployment(kube):
    return one(kube, "Deployment", component="control-plane")


def main_container(workload):
    return pod_spec(workload)["containers"][0]


def test_kustomize_renders_every_component(kube):
    kinds = {}
    for d in kube["docs"]:
        kinds.setdefault(d["kind"], []).append(d["metadata"]["name"])
    for kind in ("StatefulSet", "Service", "Secret", "Job", "Deployment",
                 "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert kind in kinds, "rendered base has no %s (has %s)" % (kind, kinds)

    pg = one(kube, "StatefulSet", component="postgres")
    claims = pg["spec"]["volumeClaimTemplates"]
    assert claims and claims[0]["spec"]["resources"]["requests"]["storage"]
    mounted = {m["name"] for c in pod_spec(pg)["containers"] for m in c.get("volumeMounts", [])}
    assert claims[0]["metadata"]["name"] in mounted, "the PVC is not mounted into PostgreSQL"
    headless = one(kube, "Service", name=pg["spec"]["serviceName"])
    assert headless["spec"].get("clusterIP") == "None", "the StatefulSet's Service is not headless"
    assert selects(headless["spec"]["selector"], pod_labels(pg))

    assert cp_deployment(kube)["spec"]["replicas"] == 2
    assert dp_deployment(kube)["spec"]["replicas"] >= 1


def test_secrets_carry_password_and_generated_cluster_cert(kube):
    secrets = {s["metadata"]["name"]: s for s in objects(kube, "Secret")}
    with_password = [s for s in secrets.values() if "password" in s.get("data", {})]
    assert len(with_password) == 1, secrets.keys()
    cert = [s for s in secrets.values() if "cluster.crt" in s.get("data", {})]
    assert len(cert) == 1, "no Secret holds cluster.crt: %s" % list(secrets)
    for f in ("cluster.crt", "cluster.key"):
        with open(os.path.join(kube["certs"], f), "rb") as fh:
            assert base64.b64decode(cert[0]["data"][f]) == fh.read(), \
                "%s in the Secret is not the file generated into certs/" % f
    # Every secretKeyRef and secret volume names a Secret (hash suffix included) and key that
    # exist: kustomize renames generated Secrets, and a stale reference leaves pods Pending.
    for w in workloads(kube):
        spec = pod_spec(w)
        for c in containers(spec):
            for e in env_list(c):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, "%s: unknown Secret %s" % (c["name"], ref)
                    assert ref["key"] in secrets[ref["name"]]["data"], ref
        for v in spec.get("volumes", []):
            if "secret" in v:
                assert v["secret"]["secretName"] in secrets, v


def test_every_sluice_variable_is_a_real_setting(kube):
    seen = set()
    for w in sluice_workloads(kube):
        for c in containers(pod_spec(w)):
            names = [e["name"] for e in env_list(c)]
            assert len(names) == len(set(names)), "%s sets a variable twice" % c["name"]
            assert not unknown_settings(names), \
                "%s/%s sets unknown settings %s; known: %s" % (
                    w["metadata"]["name"], c["name"], unknown_settings(names), sorted(SETTINGS))
            seen.update(env_setting(n) for n in names if env_setting(n))
    # The contract's settings a cluster needs are all given somewhere.
    for needed in ("pg_host", "pg_password", "admin_listen", "cluster_listen",
                   "cluster_control_plane", "cluster_cert", "cluster_cert_key", "proxy_listen",
                   "status_listen", "prefix"):
        assert needed in seen, "no manifest sets SLUICE_%s" % needed.upper()


def test_service_links_cannot_become_settings(kube):
    """Kubernetes injects <SERVICE>_PORT=tcp://... into pods; for a Service named like a
    setting (e.g. "sluice-pg" -> SLUICE_PG_PORT) that is a bad value and the pod never starts."""
    for w in sluice_workloads(kube):
        assert pod_spec(w).get("enableServiceLinks") is False, \
            "%s leaves enableServiceLinks on" % w["metadata"]["name"]
    for s in objects(kube, "Service"):
        prefix = s["metadata"]["name"].upper().replace("-", "_")
        injected = [prefix + "_SERVICE_HOST", prefix + "_SERVICE_PORT", prefix + "_PORT"]
        for n in injected:
            assert env_setting(n) not in SETTINGS, \
                "Service %s would inject %s, a real setting" % (s["metadata"]["name"], n)


def test_data_plane_probes_listeners_and_service(kube):
    dp = dp_deployment(kube)
    c = main_container(dp)
    assert c.get("command", []) + c.get("args", []) == ["sluice-dp", "serve"]
    status = env_value(c, "SLUICE_STATUS_LISTEN")
    assert status and status.split(":")[0] == "0.0.0.0", \
        "status_listen must not be loopback in a pod (the kubelet probes from outside): %r" % status
    status_port = listen_ports(status)[0]
    ready, live = c["readinessProbe"]["httpGet"], c["livenessProbe"]["httpGet"]
    assert ready["path"] == "/status/ready"
    assert live["path"] == "/status"
    assert container_port(c, ready["port"]) == status_port
    assert container_port(c, live["port"]) == status_port

    proxy_ports = listen_ports(env_value(c, "SLUICE_PROXY_LISTEN"))
    assert sorted(proxy_ports) == [8000, 8443]
    svc = [s for s in objects(kube, "Service") if selects(s["spec"]["selector"], pod_labels(dp))]
    assert len(svc) == 1, "expected one Service in front of the data planes"
    targets = sorted(container_port(c, p.get("targetPort", p["port"]))
                     for p in svc[0]["spec"]["ports"])
    assert targets == [8000, 8443]
    for other in workloads(kube):
        if other is not dp:
            assert not selects(svc[0]["spec"]["selector"], pod_labels(other)), \
                "the proxy Service also selects %s" % other["metadata"]["name"]

    res = c["resources"]
    for k in ("cpu", "memory"):
        assert res["requests"][k] and res["limits"][k], "data plane lacks %s request/limit" % k


def test_data_plane_termination_outlasts_the_drain(kube):
    spec = pod_spec(dp_deployment(kube))
    c = spec["containers"][0]
    pre_stop = 0
    cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if cmd[:1] == ["sleep"]:
        pre_stop = int(cmd[1])
    assert spec["terminationGracePeriodSeconds"] > DP_DRAIN_SECONDS + pre_stop, \
        "a SIGKILL would cut the %d s drain short" % DP_DRAIN_SECONDS


def test_control_plane_listeners_probes_and_services(kube):
    cp = cp_deployment(kube)
    c = main_container(cp)
    assert c.get("command", []) + c.get("args", []) == ["sluice-cp", "serve"]
    admin = env_value(c, "SLUICE_ADMIN_LISTEN")
    assert admin == "0.0.0.0:8001", "admin_listen in a pod: %r" % admin
    cluster_port = listen_ports(env_value(c, "SLUICE_CLUSTER_LISTEN"))[0]
    assert cluster_port == 8005
    assert container_port(c, "admin") == 8001 and container_port(c, "cluster") == 8005

    ready = c["readinessProbe"]
    assert ready.get("exec", {}).get("command") == ["sluice-cp", "health"] or \
        (ready.get("httpGet", {}).get("path") == "/status" and
         container_port(c, ready["httpGet"]["port"]) == 8001), ready
    assert "livenessProbe" in c

    by_port = {}
    for s in objects(kube, "Service"):
        if selects(s["spec"]["selector"], pod_labels(cp)):
            assert s["spec"].get("type", "ClusterIP") == "ClusterIP", \
                "%s exposes the control plane outside the cluster" % s["metadata"]["name"]
            for p in s["spec"]["ports"]:
                by_port[container_port(c, p.get("targetPort", p["port"]))] = (s, p)
    assert set(by_port) == {8001, 8005}, by_port

    # The data planes dial the cluster Service on its port.
    target = env_value(main_container(dp_deployment(kube)), "SLUICE_CLUSTER_CONTROL_PLANE")
    host, port = target.rsplit(":", 1)
    svc, p = by_port[8005]
    assert host == svc["metadata"]["name"] and int(port) == p["port"], target

    # It waits for the schema instead of crash-looping while the Job runs.
    init = pod_spec(cp).get("initContainers", [])
    assert any("migrations list" in " ".join(i.get("command", []) + i.get("args", []))
               for i in init), "control plane does not wait for migrations"


def test_migrations_job_bootstraps_then_upgrades(kube):
    job = one(kube, "Job")
    c = main_container(job)
    line = " ".join(c.get("command", []) + c.get("args", []))
    assert re.search(r"sluice-cp migrations bootstrap\b.*&&.*sluice-cp migrations up\b", line), line
    cp_env = {e["name"]: e for e in env_list(main_container(cp_deployment(kube)))}
    for e in env_list(c):
        if e["name"].startswith("SLUICE_PG_"):
            assert cp_env.get(e["name"]) == e, \
                "the Job and the control plane disagree on %s" % e["name"]


def test_sluice_pods_run_locked_down(kube):
    for w in sluice_workloads(kube):
        name = w["metadata"]["name"]
        spec = pod_spec(w)
        psc = spec.get("securityContext", {})
        assert psc.get("runAsNonRoot") is True, name
        assert psc.get("runAsUser") == IMAGE_UID, name
        mounts_by_volume = {v["name"]: v for v in spec.get("volumes", [])}
        for c in containers(spec):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, (name, c["name"])
            assert sc.get("readOnlyRootFilesystem") is True, (name, c["name"])
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (name, c["name"])
            assert c.get("resources", {}).get("limits"), (name, c["name"])
            # With a read-only root, every path a setting names must be on a volume, and the
            # prefix (node id, snapshot cache) on a writable one.
            for e in env_list(c):
                v = e.get("value") or ""
                if not v.startswith("/"):
                    continue
                mount = mount_for(c, v)
                assert mount, "%s/%s: %s=%s is on the read-only root" % (
                    name, c["name"], e["name"], v)
                if e["name"] == "SLUICE_PREFIX":
                    assert not mount.get("readOnly"), "%s: prefix mount is read-only" % name
                    assert "emptyDir" in mounts_by_volume[mount["name"]] or \
                        "persistentVolumeClaim" in mounts_by_volume[mount["name"]], name


def mount_for(container, path):
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if not best or len(mp) > len(best["mountPath"]):
                best = m
    return best


def test_autoscaler_and_disruption_budget_target_the_data_planes(kube):
    dp = dp_deployment(kube)
    hpa = one(kube, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["kind"], ref["name"]) == ("Deployment", dp["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    cpu = [m for m in hpa["spec"]["metrics"]
           if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu, "the autoscaler does not scale on CPU"
    # CPU utilisation is relative to requests: without one the HPA has nothing to compute.
    assert main_container(dp)["resources"]["requests"]["cpu"]

    pdbs = [p for p in objects(kube, "PodDisruptionBudget")
            if selects(p["spec"]["selector"]["matchLabels"], pod_labels(dp))]
    assert len(pdbs) == 1, "no PodDisruptionBudget selects the data-plane pods"
    for other in workloads(kube):
        if other is not dp:
            assert not selects(pdbs[0]["spec"]["selector"]["matchLabels"], pod_labels(other))
    # An eviction must always be possible, or node drains hang on the data planes.
    spec = pdbs[0]["spec"]
    if "minAvailable" in spec:
        assert spec["minAvailable"] < hpa["spec"]["minReplicas"], spec
    else:
        assert spec["maxUnavailable"] >= 1, spec


def test_base_refuses_to_render_without_certificates(tmp_path):
    """Forgetting `certs generate` must be an error at render time, not pods stuck on a
    missing Secret."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (Debian package kubernetes-client)")
    base = os.path.join(str(tmp_path), "kubernetes")
    shutil.copytree(KUSTOMIZE_DIR, base,
                    ignore=shutil.ignore_patterns("cluster.crt", "cluster.key"))
    r = subprocess.run([kubectl, "kustomize", base], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "cluster.crt" in r.stderr or "cluster.key" in r.stderr, r.stderr


# ---- docker compose ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose():
    with open(COMPOSE_FILE) as f:
        return yaml.safe_load(f)


def compose_env(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_compose_services_and_health_checks(compose):
    services = compose["services"]
    for name in ("postgres", "migrations", "cp", "dp"):
        assert name in services, "compose has no %s service" % name
    for name in ("postgres", "cp", "dp"):
        test = services[name].get("healthcheck", {}).get("test")
        assert test, "%s has no health check" % name
    assert services["cp"]["healthcheck"]["test"][-2:] == ["sluice-cp", "health"]
    assert services["dp"]["healthcheck"]["test"][-2:] == ["sluice-dp", "health"]

    mig = " ".join(services["migrations"]["command"])
    assert re.search(r"sluice-cp migrations bootstrap\b.*&&.*sluice-cp migrations up\b", mig)
    assert services["migrations"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["cp"]["depends_on"]["migrations"]["condition"] == \
        "service_completed_successfully"
    assert any(v.split(":")[1] == "/var/lib/postgresql/data"
               for v in services["postgres"]["volumes"]), "postgres data is not on a volume"
    assert " ".join(services["cp"]["command"]) == "sluice-cp serve"
    assert " ".join(services["dp"]["command"]) == "sluice-dp serve"


def test_compose_names_only_real_settings(compose):
    seen = set()
    for name, svc in compose["services"].items():
        env = compose_env(svc)
        assert not unknown_settings(env), "%s sets unknown settings %s" % (
            name, unknown_settings(env))
        seen.update(env_setting(n) for n in env if env_setting(n))
    for needed in ("pg_host", "pg_password", "admin_listen", "cluster_control_plane",
                   "cluster_cert", "cluster_cert_key", "proxy_listen", "status_listen"):
        assert needed in seen, "compose never sets SLUICE_%s" % needed.upper()


def test_compose_ports_and_cluster_wiring(compose):
    cp, dp = compose["services"]["cp"], compose["services"]["dp"]
    cp_env, dp_env = compose_env(cp), compose_env(dp)
    # Admin API: listening on all interfaces inside the container, published on loopback.
    assert cp_env["SLUICE_ADMIN_LISTEN"] == "0.0.0.0:8001"
    assert "127.0.0.1:8001:8001" in cp["ports"], cp["ports"]
    published = {p.rsplit(":", 1)[-1] for p in dp["ports"]}
    assert {"8000", "8443"} <= published
    assert sorted(listen_ports(dp_env["SLUICE_PROXY_LISTEN"])) == [8000, 8443]
    assert dp_env["SLUICE_STATUS_LISTEN"].startswith("0.0.0.0:")
    host, port = dp_env["SLUICE_CLUSTER_CONTROL_PLANE"].rsplit(":", 1)
    assert host == "cp" and int(port) == listen_ports(cp_env["SLUICE_CLUSTER_LISTEN"])[0]
    # Both planes read the same certificate from a mounted volume.
    for svc, env in ((cp, cp_env), (dp, dp_env)):
        assert env["SLUICE_CLUSTER_CERT"] == cp_env["SLUICE_CLUSTER_CERT"]
        for key in ("SLUICE_CLUSTER_CERT", "SLUICE_CLUSTER_CERT_KEY"):
            assert compose_mount(svc, env[key]), "%s is not on a mounted volume" % env[key]


def compose_mount(service, path):
    """The (source, target) of the volume that holds path, or None."""
    for v in service.get("volumes", []):
        parts = v.split(":")
        if path == parts[1] or path.startswith(parts[1].rstrip("/") + "/"):
            return parts[0], parts[1]
    return None


# ---- Dockerfile --------------------------------------------------------------------------------

def dockerfile_stages():
    """[(from-line, [instructions])] with continuation lines joined."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append((line, []))
        elif stages:
            stages[-1][1].append(line)
    return stages


def runtime_env():
    """ENV of the Dockerfile's last stage: what every container starts with."""
    env = {}
    for ins in dockerfile_stages()[-1][1]:
        if ins.upper().startswith("ENV "):
            for k, v in re.findall(r"(\w+)=(\S+)", ins[4:]):
                env[k] = v
    return env


def test_dockerfile_shape():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "not a multi-stage build"
    assert all("debian:12-slim" in s[0] for s in stages)
    build = " ".join(stages[0][1])
    assert "make" in build and "all" in build
    runtime = stages[-1][1]
    text = "\n".join(runtime)
    assert re.search(r"^USER 10001", text, re.M), "runtime stage does not drop to uid 10001"
    assert re.search(r"COPY --from=\S+ .*sluice-cp.*sluice-dp.* /usr/local/bin/", text)
    exposed = set(re.findall(r"\d+", " ".join(i for i in runtime if i.startswith("EXPOSE"))))
    assert {"8000", "8443", "8100", "8001", "8005"} <= exposed
    assert re.search(r'^CMD \["sluice-dp", "serve"\]', text, re.M)
    assert not unknown_settings(runtime_env())
    assert runtime_env().get("SLUICE_PREFIX") == "/var/lib/sluice"


def needed_packages(binary):
    """Debian packages of the shared libraries binary links directly (DT_NEEDED)."""
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                         check=True).stdout
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    pkgs = {}
    for lib in libs:
        r = subprocess.run(["dpkg", "-S", "*/" + lib], capture_output=True, text=True)
        names = {line.split(":")[0] for line in r.stdout.splitlines() if line}
        pkgs[lib] = {n for n in names if not n.endswith("-dev")}
    return pkgs


@pytest.mark.parametrize("binary", ["sluice-cp", "sluice-dp"])
def test_runtime_image_installs_every_library_the_binaries_link(binary):
    path = os.path.join(bin_dir(), binary)
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing: build it (make) or set SLUICE_BIN_DIR" % path)
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        pytest.skip("readelf/dpkg not available to read the binary's libraries")
    installs = " ".join(i for i in dockerfile_stages()[-1][1] if "apt-get" in i)
    for lib, pkgs in needed_packages(path).items():
        if lib.startswith(("libc.so", "libm.so", "libpthread", "libdl", "ld-linux")):
            continue  # libc6: in every Debian image
        if lib.startswith(("libasan", "libubsan", "liblsan", "libtsan")):
            continue  # sanitizer builds of the test suite; the image builds without them
        assert pkgs, "no Debian package provides %s" % lib
        assert any(re.search(r"(^|\s)%s(\s|$)" % re.escape(p), installs) for p in pkgs), \
            "%s links %s (package %s), which the runtime stage does not install" % (
                binary, lib, " or ".join(sorted(pkgs)))


# ---- the binaries, with exactly the manifests' environment ------------------------------------

class PortMap:
    """Manifest ports -> free local ports, the same manifest port always mapping to the same
    local one (so a probe's port and the listener it probes stay paired)."""

    def __init__(self):
        self.map = {}

    def __call__(self, port):
        port = int(port)
        if port not in self.map:
            self.map[port] = free_port()
        return self.map[port]


def rewrite_value(setting, value, ports, mounts):
    """One manifest value, made runnable here: listener and peer ports to free ones, in-cluster
    host names to the loopback, absolute paths into the temp folder standing for their mount."""
    kind = SETTINGS[setting]
    if kind in ("SL_SET_LISTEN", "SL_SET_HOSTPORT"):
        def one_addr(m):
            host = m.group(1)
            if not re.match(r"^[\d.]+$|^\[", host):
                host = "127.0.0.1"  # a Service or compose name
            return "%s:%d" % (host, ports(m.group(2)))
        return re.sub(r"([^\s,]+):(\d+)", one_addr, value)
    if value.startswith("/"):
        for mount_path, local in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
            if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                return local + value[len(mount_path.rstrip("/")):]
        raise AssertionError("%s=%s: no volume provides this path" % (setting, value))
    return value


def runnable_env(env, ports, mounts, pg=None, db=None):
    """base_env() plus the manifest's SLUICE_* variables, rewritten. The PostgreSQL connection
    (host, port, user, password, database) is the test's: the manifests name the in-cluster one."""
    out = base_env()
    for name, value in env.items():
        setting = env_setting(name)
        assert setting in SETTINGS, name
        out[name] = rewrite_value(setting, value, ports, mounts)
    if pg is not None:
        out.update({"SLUICE_PG_HOST": pg.host, "SLUICE_PG_PORT": str(pg.port),
                    "SLUICE_PG_USER": pg.user, "SLUICE_PG_PASSWORD": pg.password,
                    "SLUICE_PG_DATABASE": db})
    out["PATH"] = bin_dir() + os.pathsep + out.get("PATH", "/usr/bin:/bin")
    return out


def kube_env(kube, container):
    """A container's environment as the kubelet would give it (secretKeyRef resolved)."""
    secrets = {s["metadata"]["name"]: s for s in objects(kube, "Secret")}
    env = dict(runtime_env())
    for e in env_list(container):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
    return env


def kube_mounts(kube, workload, container, root):
    """{mountPath: local dir} with each volume's contents: Secrets' files, empty emptyDirs.
    Folders the image's ENV names outside any volume (its default prefix) get a dir too."""
    secrets = {s["metadata"]["name"]: s for s in objects(kube, "Secret")}
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    mounts = {}
    for m in container.get("volumeMounts", []):
        local = os.path.join(root, "vol-" + m["name"])
        os.makedirs(local, exist_ok=True)
        vol = volumes[m["name"]]
        if "secret" in vol:
            for key, data in secrets[vol["secret"]["secretName"]]["data"].items():
                path = os.path.join(local, key)
                with open(path, "wb") as f:
                    f.write(base64.b64decode(data))
                os.chmod(path, vol["secret"].get("defaultMode", 0o644))
        mounts[m["mountPath"]] = local
    for name, value in runtime_env().items():
        if value.startswith("/") and not mount_for(container, value):
            local = os.path.join(root, "image-" + name.lower())
            os.makedirs(local, exist_ok=True)
            mounts[value] = local
    return mounts


class Proc:
    """A binary started with a manifest's command, log kept, stopped and checked by stop()."""

    def __init__(self, argv, env, log_path):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, grace):
        """SIGTERM as the kubelet sends it; the process must be gone within grace seconds."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._log.close()
                raise AssertionError("still running %d s after SIGTERM:\n%s" % (grace, self.log()))
        self._log.close()
        return log_problems(self.log())


def wait_http(url, want, proc, timeout=20):
    """Polls url until it answers with status want; returns the last status (or None)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if not proc.alive():
            raise AssertionError("exited with %s before %s answered %d:\n%s" % (
                proc.proc.returncode, url, want, proc.log()))
        try:
            last = requests.get(url, timeout=2).status_code
            if last == want:
                return last
        except requests.RequestException:
            pass
        time.sleep(0.1)
    return last


def dp_binary():
    path = os.path.join(bin_dir(), "sluice-dp")
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing: build it (make) or set SLUICE_BIN_DIR" % path)
    return path


def probe_url(container, probe, ports):
    get = container[probe]["httpGet"]
    return "http://127.0.0.1:%d%s" % (ports(container_port(container, get["port"])), get["path"])


def test_data_plane_starts_with_the_kubernetes_environment(kube, tmp_path):
    """sluice-dp with the Deployment's env, no control plane reachable: alive (/status 200)
    and not ready (/status/ready 503), exactly what the probes expect; SIGTERM ends it within
    the pod's grace period."""
    dp_binary()
    dp = dp_deployment(kube)
    c = main_container(dp)
    ports = PortMap()
    env = runnable_env(kube_env(kube, c), ports, kube_mounts(kube, dp, c, str(tmp_path)))
    proc = Proc(c["command"], env, str(tmp_path / "sluice-dp.log"))
    try:
        live = wait_http(probe_url(c, "livenessProbe", ports), 200, proc)
        assert live == 200, "liveness probe got %s:\n%s" % (live, proc.log())
        ready = requests.get(probe_url(c, "readinessProbe", ports), timeout=5).status_code
        assert ready == 503, "ready without any config (%d)" % ready
    finally:
        problems = proc.stop(pod_spec(dp)["terminationGracePeriodSeconds"])
    assert not problems, problems


def run_job(container, env, timeout=60):
    return subprocess.run(container["command"] + container.get("args", []), env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cluster_runs_from_the_kubernetes_manifests(kube, pg, sluice_cp_bin, tmp_path):
    """The migrations Job, the control plane (its init container and readiness probe), then a
    data plane, each with its manifest's command and environment: the data plane syncs from
    the control plane over mTLS with the Secret's certificate and turns ready."""
    dp_binary()
    db = pg.create_database("deploy")
    ports = PortMap()

    job = one(kube, "Job")
    jc = main_container(job)
    env = runnable_env(kube_env(kube, jc), ports, kube_mounts(kube, job, jc, str(tmp_path / "job")),
                       pg, db)
    r = run_job(jc, env)
    assert r.returncode == 0, "migrations Job failed:\n" + r.stdout + r.stderr
    r = run_job(jc, env)
    assert r.returncode == 0, "migrations Job is not re-runnable:\n" + r.stdout + r.stderr

    cp = cp_deployment(kube)
    procs = []
    try:
        for ic in pod_spec(cp).get("initContainers", []):
            ienv = runnable_env(kube_env(kube, ic), ports,
                                kube_mounts(kube, cp, ic, str(tmp_path / "cp")), pg, db)
            r = run_job(ic, ienv, timeout=20)
            assert r.returncode == 0, "init container %s:\n%s%s" % (ic["name"], r.stdout, r.stderr)
        cc = main_container(cp)
        cenv = runnable_env(kube_env(kube, cc), ports,
                            kube_mounts(kube, cp, cc, str(tmp_path / "cp")), pg, db)
        cproc = Proc(cc["command"], cenv, str(tmp_path / "sluice-cp.log"))
        procs.append((cproc, pod_spec(cp)["terminationGracePeriodSeconds"]))
        probe = cc["readinessProbe"]["exec"]["command"]
        deadline = time.time() + 20
        while True:
            r = subprocess.run(probe, env=cenv, capture_output=True, text=True, timeout=10)
            if r.returncode == 0 or time.time() > deadline or not cproc.alive():
                break
            time.sleep(0.2)
        assert r.returncode == 0, "control plane readiness probe: %s%s\n%s" % (
            r.stdout, r.stderr, cproc.log())

        dp = dp_deployment(kube)
        dc = main_container(dp)
        denv = runnable_env(kube_env(kube, dc), ports,
                            kube_mounts(kube, dp, dc, str(tmp_path / "dp")))
        dproc = Proc(dc["command"], denv, str(tmp_path / "sluice-dp.log"))
        procs.append((dproc, pod_spec(dp)["terminationGracePeriodSeconds"]))
        status = wait_http(probe_url(dc, "readinessProbe", ports), 200, dproc, timeout=30)
        assert status == 200, "data plane never turned ready (%s):\n%s\n--- cp:\n%s" % (
            status, dproc.log(), cproc.log())
    finally:
        problems = []
        for proc, grace in reversed(procs):
            problems += proc.stop(grace)
    assert not problems, problems


def test_data_plane_starts_with_the_compose_environment(compose, tmp_path):
    """sluice-dp with the compose service's env and the image's ENV, certificates made by the
    compose `certs` service's own command in the volume it mounts."""
    dp_binary()
    svc = compose["services"]["dp"]
    ports = PortMap()
    mounts = {}
    for v in svc.get("volumes", []):
        source, target = v.split(":")[:2]
        local = str(tmp_path / ("vol-" + source))
        os.makedirs(local, exist_ok=True)
        mounts[target] = local
        for other in compose["services"].values():  # whoever fills that volume, fill it here
            if other is svc or other.get("restart") != "no":
                continue
            if any(x.split(":")[:2] == [source, target] for x in other.get("volumes", [])):
                cmd = [a.replace(target, local) for a in other["command"]]
                r = subprocess.run(cmd, env=runnable_env({}, ports, {}), capture_output=True,
                                   text=True, timeout=60)
                assert r.returncode == 0, r.stdout + r.stderr
    env = dict(runtime_env())
    mounts.setdefault(env["SLUICE_PREFIX"], str(tmp_path / "image-prefix"))
    os.makedirs(mounts[env["SLUICE_PREFIX"]], exist_ok=True)
    env.update(compose_env(svc))
    renv = runnable_env(env, ports, mounts)
    proc = Proc(svc["command"], renv, str(tmp_path / "sluice-dp.log"))
    status_port = ports(listen_ports(env["SLUICE_STATUS_LISTEN"])[0])
    try:
        live = wait_http("http://127.0.0.1:%d/status" % status_port, 200, proc)
        assert live == 200, proc.log()
        # The compose health check is `sluice-dp health`: not healthy without a config.
        r = subprocess.run(svc["healthcheck"]["test"][1:], env=renv, capture_output=True,
                           text=True, timeout=20)
        assert r.returncode != 0, "healthy without any config: " + r.stdout
    finally:
        problems = proc.stop(30 + 5)
    assert not problems, problems
