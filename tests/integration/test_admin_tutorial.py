"""The Kong tutorial's Step 5, typed exactly as a user would (curl, form data), against
sluice-cp: the responses must carry Kong's fields and defaults, so existing scripts keep working."""

import json
import subprocess


def curl(*args):
    """Runs curl -i ARGS; returns (status, headers dict lower-cased, parsed JSON body)."""
    r = subprocess.run(["curl", "-s", "-S", "-i", "--max-time", "20"] + list(args),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, json.loads(body) if body.strip() else None


def test_tutorial_step5_service_and_route(cp):
    port = cp.admin_port
    # First, create a service (verbatim but for the port).
    status, headers, service = curl(
        "-X", "POST",
        "--url", "http://localhost:%d/services/" % port,
        "--data", "name=httpbin-service",
        "--data", "url=http://httpbin.org")
    assert status == 201, service
    assert headers.get("content-type", "").startswith("application/json")
    assert isinstance(service["id"], str) and len(service["id"]) == 36
    assert isinstance(service["created_at"], int) and isinstance(service["updated_at"], int)
    expected = {
        "name": "httpbin-service", "protocol": "http", "host": "httpbin.org", "port": 80,
        "path": None, "retries": 5, "connect_timeout": 60000, "write_timeout": 60000,
        "read_timeout": 60000, "tags": None, "client_certificate": None, "tls_verify": None,
        "tls_verify_depth": None, "ca_certificates": None, "enabled": True,
    }
    for k, v in expected.items():
        assert k in service, "service lacks %s: %s" % (k, service)
        assert service[k] == v, "service %s = %r, Kong gives %r" % (k, service[k], v)
    assert "url" not in service, "url is input shorthand only"

    # Next, create a route.
    status, _, route = curl(
        "-X", "POST",
        "--url", "http://localhost:%d/services/httpbin-service/routes" % port,
        "--data", "paths[]=/httpbin",
        "--data", "name=httpbin-route")
    assert status == 201, route
    expected = {
        "paths": ["/httpbin"], "name": "httpbin-route", "service": {"id": service["id"]},
        "protocols": ["http", "https"], "strip_path": True, "preserve_host": False,
        "regex_priority": 0, "https_redirect_status_code": 426, "path_handling": "v0",
        "methods": None, "hosts": None, "headers": None, "snis": None, "sources": None,
        "destinations": None, "request_buffering": True, "response_buffering": True,
        "tags": None,
    }
    for k, v in expected.items():
        assert k in route, "route lacks %s: %s" % (k, route)
        assert route[k] == v, "route %s = %r, Kong gives %r" % (k, route[k], v)

    # "Use the Kong Admin API to inspect the configured services and routes."
    status, _, listed = curl("http://localhost:%d/services/httpbin-service/routes" % port)
    assert status == 200
    assert [r["id"] for r in listed["data"]] == [route["id"]]
    assert listed["next"] is None
    status, _, got = curl("http://localhost:%d/services/httpbin-service" % port)
    assert status == 200 and got == service
