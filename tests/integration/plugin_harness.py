"""Snapshot rows for plugin tests: plugins with Kong's defaults filled (as the control plane
sends them), consumers and their credentials. Used by tests/integration/test_plugins_*.py."""

import base64
import hashlib
import json
import os
import socket

from dp_harness import NOW, new_id, read_response

DEFAULTS = {
    "key-auth": {"key_names": ["apikey"], "hide_credentials": False, "anonymous": None,
                 "key_in_header": True, "key_in_query": True, "key_in_body": False,
                 "run_on_preflight": True, "realm": None},
    "basic-auth": {"hide_credentials": False, "anonymous": None, "realm": "service"},
    "acl": {"allow": None, "deny": None, "hide_groups_header": False,
            "always_use_authenticated_groups": False},
    "rate-limiting": {"second": None, "minute": None, "hour": None, "day": None, "month": None,
                      "year": None, "limit_by": "consumer", "header_name": None, "path": None,
                      "policy": "local", "fault_tolerant": True, "redis": {},
                      "hide_client_headers": False, "error_code": 429,
                      "error_message": "API rate limit exceeded", "sync_rate": -1},
    "ip-restriction": {"allow": None, "deny": None, "status": None, "message": None},
    "request-size-limiting": {"allowed_payload_size": 128, "size_unit": "megabytes",
                              "require_content_length": False},
    "correlation-id": {"header_name": "Kong-Request-ID", "generator": "uuid#counter",
                       "echo_downstream": False},
}


def plugin(name, tag="", route=None, service=None, consumer=None, enabled=True, **conf):
    c = dict(DEFAULTS.get(name, {}))
    c.update(conf)
    ref = lambda e: {"id": e["id"]} if e else None  # noqa: E731
    return {"id": new_id("plugin-%s-%s" % (name, tag)), "name": name, "config": c,
            "route": ref(route), "service": ref(service), "consumer": ref(consumer),
            "enabled": enabled, "protocols": ["grpc", "grpcs", "http", "https"],
            "created_at": NOW, "updated_at": NOW, "instance_name": None, "tags": None}


def consumer(username, custom_id=None):
    return {"id": new_id("consumer-" + username), "username": username, "custom_id": custom_id,
            "created_at": NOW, "updated_at": NOW, "tags": None}


def keyauth(cons, key, ttl=None, created_at=NOW):
    return {"id": new_id("key-" + key), "consumer": {"id": cons["id"]}, "key": key, "ttl": ttl,
            "created_at": created_at, "tags": None}


def password_hash(pw, iterations=1000):
    """The stored form of proto/password.h."""
    salt = os.urandom(16)
    h = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, iterations, 32)
    return "$pbkdf2-sha256$%d$%s$%s" % (iterations, base64.b64encode(salt).decode(),
                                        base64.b64encode(h).decode())


def basicauth(cons, username, password):
    return {"id": new_id("basic-" + username), "consumer": {"id": cons["id"]},
            "username": username, "password": password_hash(password), "created_at": NOW,
            "tags": None}


def acl(cons, group):
    return {"id": new_id("acl-%s-%s" % (cons["username"], group)),
            "consumer": {"id": cons["id"]}, "group": group, "created_at": NOW, "tags": None}


def request(port, method, path, headers=None, body=b"", host="plugins.test"):
    """One request on a fresh connection: (status, headers, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    h = {"Host": host}
    h.update(headers or {})
    if body and "Content-Length" not in h and "Transfer-Encoding" not in h:
        h["Content-Length"] = str(len(body))
    raw = ("%s %s HTTP/1.1\r\n" % (method, path) +
           "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode() + body
    s.sendall(raw)
    status, rh, rb, _ = read_response(s, method)
    s.close()
    return status, rh, rb


def seen(body):
    """What the dp_harness upstream echoed: headers (lower-case -> list) and path."""
    return json.loads(body)
