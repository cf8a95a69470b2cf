"""A MongoDB wire-protocol proxy that injects faults into chosen commands, for tests.

Real MongoDB offers the ``failCommand`` fail point for this; the local stand-in does not, so the proxy sits
between the driver and the server and, for commands a rule matches: answers a WriteConflict (code 112,
labelled TransientTransactionError) without forwarding; drops the connection before forwarding (the
driver raises AutoReconnect, nothing was applied); forwards and then drops the connection instead of the
reply (applied, acknowledgement lost); or holds the command until released, so a test can SIGKILL the
client at an exact point of the export. It works for any client process that connects through it.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bson

OP_MSG = 2013
_HEADER = struct.Struct("<iiii")


@dataclass(frozen=True)
class Command:
    name: str
    collection: Any
    body: dict[str, Any]
    documents: dict[str, list[dict[str, Any]]]

    def statements(self) -> list[dict[str, Any]]:
        """The per-document statements of a write command (``updates``, ``deletes``, ``documents``)."""
        for key in ("updates", "deletes", "documents"):
            if key in self.body:
                return list(self.body[key])
            if key in self.documents:
                return self.documents[key]
        return []

    @property
    def target_ids(self) -> tuple[Any, ...]:
        if self.name == "findandmodify":
            return (self.body.get("query", {}).get("_id"),)
        if self.name == "insert":
            return tuple(document.get("_id") for document in self.statements())
        return tuple(statement.get("q", {}).get("_id") for statement in self.statements())

    @property
    def shape(self) -> tuple[Any, ...]:
        """What identifies "the same operation" across retries: command, target and the keys it uses."""
        if self.name == "findandmodify":
            filters = [self.body.get("query", {})]
            updates = [self.body.get("update", {})]
        elif self.name == "update":
            filters = [statement.get("q", {}) for statement in self.statements()]
            updates = [statement.get("u", {}) for statement in self.statements()]
        else:
            filters, updates = [], []
        return (
            self.name,
            self.collection,
            tuple(str(target) for target in self.target_ids),
            tuple(tuple(sorted(f)) for f in filters),
            tuple(tuple(sorted(u)) for u in updates),
        )


WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findandmodify"})


def writes_to(collection: str) -> Callable[[Command], bool]:
    return lambda command: command.name in WRITE_COMMANDS and command.collection == collection


@dataclass
class Rule:
    """``action`` is one of write_conflict, drop_before, drop_after, hold.

    The rule fires for the matching commands after the first ``skip``, ``times`` times; with
    ``per_shape`` it counts each distinct operation (command, target document, keys used) separately,
    so "the first two attempts of every counter operation" is ``times=2, per_shape=True``.
    """

    matches: Callable[[Command], bool]
    action: str
    times: int = 1
    per_shape: bool = False
    skip: int = 0
    applied: int = 0
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _seen: dict[Any, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fires_for(self, command: Command) -> bool:
        if not self.matches(command):
            return False
        with self._lock:
            key = command.shape if self.per_shape else None
            seen = self._seen.get(key, 0)
            self._seen[key] = seen + 1
            if seen < self.skip or seen >= self.skip + self.times:
                return False
            self.applied += 1
            return True


class MongoFaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.rules: list[Rule] = []
        # The protocol step (MongoDB ``comment``) of every command that passed, in order of arrival.
        self.steps_seen: list[str] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> MongoFaultProxy:
        self._thread.start()
        return self

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        for rule in self.rules:
            rule.release.set()
        self.rules = []

    def close(self) -> None:
        self._closed = True
        self.clear()
        self._listener.close()
        for connection in list(self._connections):
            _close(connection)

    # -- plumbing --------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            _close(client)
            return
        self._connections.extend([client, server])
        swallow = threading.Event()
        threading.Thread(target=self._replies, args=(server, client, swallow), daemon=True).start()
        try:
            while True:
                message = _read_message(client)
                if message is None:
                    break
                rule = self._rule_for(message)
                if rule is None:
                    server.sendall(message)
                elif rule.action == "write_conflict":
                    client.sendall(_write_conflict_reply(message))
                elif rule.action == "drop_before":
                    break
                elif rule.action == "drop_after":
                    swallow.set()
                    server.sendall(message)
                    return
                elif rule.action == "hold":
                    # The client is killed while held: the command is never delivered, as if the process
                    # had died just before sending it.
                    rule.reached.set()
                    rule.release.wait()
                    break
        except OSError:
            pass
        finally:
            if not swallow.is_set():
                _close(client)
                _close(server)

    def _replies(self, server: socket.socket, client: socket.socket, swallow: threading.Event) -> None:
        try:
            while True:
                message = _read_message(server)
                if message is None:
                    break
                if swallow.is_set():
                    break
                client.sendall(message)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)

    def _rule_for(self, message: bytes) -> Rule | None:
        command = _parse_command(message)
        if command is None:
            return None
        if isinstance(command.body.get("comment"), str):
            self.steps_seen.append(command.body["comment"])
        for rule in list(self.rules):
            if rule.fires_for(command):
                return rule
        return None


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks.extend(chunk)
    return bytes(chunks)


def _read_message(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, 16)
    if header is None:
        return None
    length = _HEADER.unpack(header)[0]
    rest = _read_exactly(sock, length - 16)
    return None if rest is None else header + rest


def _parse_command(message: bytes) -> Command | None:
    _, _, _, op_code = _HEADER.unpack_from(message)
    if op_code != OP_MSG:
        return None
    position = 20  # header + flagBits
    body: dict[str, Any] = {}
    documents: dict[str, list[dict[str, Any]]] = {}
    while position < len(message):
        kind = message[position]
        position += 1
        if kind == 0:
            size = struct.unpack_from("<i", message, position)[0]
            body = bson.decode(message[position : position + size])
            position += size
        elif kind == 1:
            size = struct.unpack_from("<i", message, position)[0]
            end = position + size
            name_end = message.index(b"\x00", position + 4)
            identifier = message[position + 4 : name_end].decode()
            documents[identifier] = bson.decode_all(message[name_end + 1 : end])
            position = end
        else:
            return None
    if not body:
        return None
    name = next(iter(body))
    return Command(name=name.lower(), collection=body[name], body=body, documents=documents)


def _write_conflict_reply(request: bytes) -> bytes:
    request_id = _HEADER.unpack_from(request)[1]
    payload = bson.encode(
        {
            "ok": 0.0,
            "errmsg": "WriteConflict error: this operation conflicted with another operation. "
            "Please retry your operation or multi-document transaction.",
            "code": 112,
            "codeName": "WriteConflict",
            "errorLabels": ["TransientTransactionError"],
        }
    )
    body = struct.pack("<I", 0) + b"\x00" + payload
    return _HEADER.pack(16 + len(body), 0, request_id, OP_MSG) + body


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
