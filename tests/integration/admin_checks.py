"""Small assertion helpers for Admin API responses: the failure message shows the method, path,
status and body, which is what one needs to see when a test fails."""

import subprocess


def expect(resp, status):
    """Asserts the status; returns the parsed JSON body (None when empty)."""
    body = resp.text
    assert resp.status_code == status, "%s %s -> %d (expected %d): %s" % (
        resp.request.method, resp.request.path_url, resp.status_code, status, body[:2000])
    return resp.json() if body.strip() else None


def self_signed(tmp_path, cn, name="cert"):
    """A self-signed certificate (CA:TRUE, as openssl req -x509 makes) and its key, PEM text."""
    crt, key = tmp_path / (name + ".crt"), tmp_path / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + cn, "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    return crt.read_text(), key.read_text()


def der_sha256(pem_text):
    """Hex sha256 of the certificate's DER encoding (Kong's ca_certificates cert_digest)."""
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem_text.encode(),
                         check=True, capture_output=True).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()
