"""A small fake control plane for tests that need to send a data plane what a real control plane
never would (corrupt, truncated or badly hashed snapshots): a mutual-TLS websocket server on
/v1/outlet written with the stdlib ssl module and hand-written RFC 6455 framing, speaking the
cluster messages of proto/cluster_msg.h (msgpack maps with a "type").

    cp = FakeControlPlane(cert, key).start()
    hello = cp.expect("hello")
    cp.send(envelope_bytes)
    reply = cp.expect(("ack", "error"))
"""

import base64
import hashlib
import queue
import socket
import ssl
import struct
import threading

import msgpack

from sluice_harness import free_port

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOL = "sluice-cluster"
MAX_MESSAGE = 16 * 1024 * 1024  # larger messages from the data plane end the connection
MAX_HEAD = 16 * 1024            # bytes of the HTTP upgrade request


class FakeControlPlane:
    """Serves one data plane connection at a time; messages it receives (decoded msgpack maps)
    wait in a queue for expect(). Pings are answered with pongs."""

    def __init__(self, cert, key, ca=None):
        self.port = free_port()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        # shared mode: the cluster certificate is the only trust anchor, as on the real one
        self.ctx.load_verify_locations(ca or cert)
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.messages = queue.Queue()
        self.conn = None
        self.lock = threading.Lock()
        self.connections = 0
        self.errors = []
        self.listener = None
        self.stopping = False

    def start(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(8)
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self):
        self.stopping = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            if self.conn:
                try:
                    self.conn.close()
                except OSError:
                    pass
                self.conn = None

    # ---- receiving ----

    def expect(self, types, timeout=15):
        """The next message whose type is in types (a string or a tuple); others are skipped
        (pings). Raises AssertionError on timeout."""
        if isinstance(types, str):
            types = (types,)
        skipped = []
        while True:
            try:
                m = self.messages.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError("no %s message within %ss (skipped %r, errors %r)"
                                     % ("/".join(types), timeout, skipped, self.errors))
            if m.get("type") in types:
                return m
            skipped.append(m.get("type"))

    def _accept_loop(self):
        while not self.stopping:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            raw.settimeout(10)
            conn = self.ctx.wrap_socket(raw, server_side=True)
            self._handshake(conn)
            conn.settimeout(None)
        except (OSError, ssl.SSLError, ValueError) as e:
            self.errors.append("handshake: %s" % e)
            raw.close()
            return
        with self.lock:
            self.conn = conn
            self.connections += 1
        try:
            self._read_loop(conn)
        except (OSError, ssl.SSLError, ValueError) as e:
            if not self.stopping:
                self.errors.append("read: %s" % e)
        finally:
            with self.lock:
                if self.conn is conn:
                    self.conn = None
            try:
                conn.close()
            except OSError:
                pass

    def _handshake(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                raise ValueError("closed during the upgrade request")
            head += chunk
            if len(head) > MAX_HEAD:
                raise ValueError("upgrade request too large")
        lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        request = lines[0].split()
        if len(request) < 2 or request[0] != "GET" or request[1] != "/v1/outlet":
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            raise ValueError("unexpected request %r" % lines[0])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get("sec-websocket-key")
        protocols = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",")]
        if not key or PROTOCOL not in protocols:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            raise ValueError("no websocket key or protocol %s" % PROTOCOL)
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                      "Sec-WebSocket-Protocol: %s\r\n\r\n" % (accept, PROTOCOL)).encode())

    @staticmethod
    def _recv_exact(conn, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise ValueError("connection closed")
            buf += chunk
        return bytes(buf)

    def _read_frame(self, conn):
        b0, b1 = self._recv_exact(conn, 2)
        fin, opcode = b0 & 0x80, b0 & 0x0F
        masked, length = b1 & 0x80, b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._recv_exact(conn, 2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._recv_exact(conn, 8))[0]
        if not masked:
            raise ValueError("client frame without a mask (RFC 6455 5.1)")
        if length > MAX_MESSAGE:
            raise ValueError("frame of %d bytes" % length)
        mask = self._recv_exact(conn, 4)
        data = bytearray(self._recv_exact(conn, length))
        for i in range(length):
            data[i] ^= mask[i & 3]
        return bool(fin), opcode, bytes(data)

    def _read_loop(self, conn):
        message = None
        while True:
            fin, opcode, data = self._read_frame(conn)
            if opcode == 0x8:  # close: answer it and stop
                self._send_frame(conn, 0x8, data[:2])
                return
            if opcode == 0x9:
                self._send_frame(conn, 0xA, data)
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                message = data
            elif opcode == 0x0 and message is not None:
                message += data
                if len(message) > MAX_MESSAGE:
                    raise ValueError("message over %d bytes" % MAX_MESSAGE)
            else:
                raise ValueError("unexpected opcode %d" % opcode)
            if fin:
                self.messages.put(msgpack.unpackb(message, raw=False))
                message = None

    # ---- sending ----

    def _send_frame(self, conn, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self.lock:
            conn.sendall(head + payload)

    def send(self, message):
        """Sends bytes (or a dict, msgpack-encoded) as one binary message to the data plane."""
        if isinstance(message, dict):
            message = msgpack.packb(message, use_bin_type=True)
        conn = self.conn
        if conn is None:
            raise AssertionError("no data plane connected")
        self._send_frame(conn, 0x2, message)

    def wait_connected(self, timeout=15):
        import time
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.conn is not None:
                return
            time.sleep(0.02)
        raise AssertionError("no data plane connected within %ss (errors %r)"
                             % (timeout, self.errors))


def read_envelope(raw):
    """A snapshot envelope (proto/snapshot.h) as a dict, in its key order."""
    return msgpack.unpackb(raw, raw=False)


def pack_envelope(env):
    return msgpack.packb(env, use_bin_type=True)
