#!/usr/bin/env python3
"""A small Confluent-compatible schema registry for tests and the demo (standard library only).

No Confluent registry server is installable here, so tests run this one. It speaks the subset of
Confluent's REST API that serializers, converters and sinks use, with Confluent's status codes
and error bodies, so Confluent's own clients (Java `CachedSchemaRegistryClient` inside
`AvroConverter`, Python `SchemaRegistryClient`) work against it unchanged:

  POST   /subjects/{s}/versions            register → {"id": N} (same schema → same global id)
  POST   /subjects/{s}                     look a schema up in a subject
  GET    /schemas/ids/{id}                 → {"schema", "schemaType" unless AVRO, "references"?}
  GET    /schemas/ids/{id}/schema          the schema text alone
  GET    /schemas/ids/{id}/versions        → [{"subject", "version"}]
  GET    /schemas/ids/{id}/subjects        → [subject]
  GET    /schemas/types                    → ["AVRO", "JSON", "PROTOBUF"]
  GET    /subjects                         → [subject]
  GET    /subjects/{s}/versions            → [version]
  GET    /subjects/{s}/versions/{v|latest} → {"subject", "version", "id", "schema", ...}
  GET    /subjects/{s}/versions/{v}/schema the schema text alone
  DELETE /subjects/{s}[?permanent=true]    → [deleted versions] (ids stay readable)
  DELETE /subjects/{s}/versions/{v}        → version
  GET/PUT/DELETE /config[/{s}]             compatibility: stored and echoed, never enforced
  GET/PUT /mode[/{s}]                      stored and echoed
  POST   /compatibility/subjects/{s}/versions/{v}  always {"is_compatible": true}

Identity of a schema: its type, its references and its JSON parsed and re-serialized with sorted
keys (whitespace and key order do not matter); protobuf text is compared verbatim. An AVRO or
JSON schema is stored compact, in the key order it came in, numbers as written — like
Confluent's canonical string. Versions count per subject from 1; ids are global from 1.

Not Confluent, for tests:
  --state FILE     every change is written to FILE (atomically) and read back at start, so a
                   registry killed and restarted on the same port keeps its ids.
  --user-info U:P  HTTP basic auth required on every API request (401 + error JSON otherwise).
  --fail-first N   the first N API requests answer 503.
  POST /__admin/fail {"status": 503, "for_s": 10, "count": N, "delay_s": 0, "error_code": C}
                   makes API requests fail with `status` for `for_s` seconds and/or the next
                   `count` requests; status 0 closes the connection without an answer; `delay_s`
                   holds each API request that long first (a slow registry). {} clears it.
  GET  /__admin/requests  → {"total": N, "by_route": {"GET /schemas/ids/{sid}": n, ...}}
                   (every API request, failed ones included)
  POST /__admin/reset-counts
  Admin routes need no auth and never fail.

Prints `listening on http://HOST:PORT` as its first stdout line (port 0 picks a free one),
logs one line per request on stderr (--quiet: none), exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    """A client closing its connection mid-request (a test killing a worker) is not an error."""

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)
from urllib.parse import parse_qs, unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")
COMPATIBILITY = ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
                 "FULL", "FULL_TRANSITIVE")
MODES = ("READWRITE", "READONLY", "IMPORT")


class ApiError(Exception):
    """An answer in Confluent's error format: HTTP status + {"error_code", "message"}."""

    def __init__(self, status: int, error_code: int, message: str):
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def subject_not_found(s: str) -> ApiError:
    return ApiError(404, 40401, f"Subject '{s}' not found.")


def version_not_found(v) -> ApiError:
    return ApiError(404, 40402, f"Version {v} not found.")


def schema_not_found() -> ApiError:
    return ApiError(404, 40403, "Schema not found")


# --- schema text ----------------------------------------------------------------------------

class _Num(str):
    """A JSON number token kept exactly as written."""


def _parse_json(text: str):
    def bad_constant(c):
        raise ValueError(f"{c} is not JSON")

    return json.loads(text, parse_int=_Num, parse_float=_Num, parse_constant=bad_constant)


def _dump(v, sort: bool) -> str:
    if isinstance(v, _Num):
        return str(v)
    if isinstance(v, dict):
        items = sorted(v.items()) if sort else v.items()
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump(x, sort)
                              for k, x in items) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_dump(x, sort) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


def canonical(schema: str, schema_type: str) -> tuple[str, str]:
    """(text to store, identity key) of a schema; ApiError 42201 if it does not parse."""
    if schema_type == "PROTOBUF":
        if not schema.strip():
            raise ApiError(422, 42201, "Invalid schema: empty")
        return schema, schema.strip()
    try:
        doc = _parse_json(schema)
    except ValueError as e:
        raise ApiError(422, 42201, f"Invalid schema {schema[:200]!r}: {e}") from None
    if schema_type == "AVRO" and not isinstance(doc, (str, dict, list)):
        raise ApiError(422, 42201, f"Invalid schema {schema[:200]!r}: not an Avro schema")
    return _dump(doc, sort=False), _dump(doc, sort=True)


def references_key(refs: list) -> str:
    return json.dumps([[r.get("name"), r.get("subject"), r.get("version")] for r in refs])


# --- state ----------------------------------------------------------------------------------

class Registry:
    """All state, guarded by one lock; persisted to `state_file` after every change."""

    def __init__(self, state_file: str | None):
        self.lock = threading.Lock()
        self.state_file = state_file
        # id → {"schema", "schemaType", "references"}
        self.schemas: dict[int, dict] = {}
        # identity key → id
        self.by_key: dict[str, int] = {}
        # subject → list of {"version", "id", "deleted"}
        self.subjects: dict[str, list[dict]] = {}
        self.config: dict[str, str] = {}  # "" = global
        self.mode: dict[str, str] = {}
        if state_file and os.path.exists(state_file):
            self._load()

    def _load(self) -> None:
        with open(self.state_file, encoding="utf-8") as f:
            st = json.load(f)
        for sid, s in st["schemas"].items():
            self.schemas[int(sid)] = s
            self.by_key[self._key(s["schema"], s["schemaType"], s["references"])] = int(sid)
        self.subjects = st["subjects"]
        self.config = st.get("config", {})
        self.mode = st.get("mode", {})

    def save(self) -> None:
        if not self.state_file:
            return
        st = {"schemas": {str(k): v for k, v in sorted(self.schemas.items())},
              "subjects": self.subjects, "config": self.config, "mode": self.mode}
        d = os.path.dirname(os.path.abspath(self.state_file))
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".registry-state-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(st, f, ensure_ascii=False)
        os.replace(tmp, self.state_file)

    @staticmethod
    def _key(schema: str, schema_type: str, refs: list) -> str:
        return schema_type + "\n" + references_key(refs) + "\n" + canonical(schema, schema_type)[1]

    def versions(self, subject: str, deleted: bool = False) -> list[dict]:
        vs = [v for v in self.subjects.get(subject, []) if deleted or not v["deleted"]]
        if not vs:
            raise subject_not_found(subject)
        return vs

    def version(self, subject: str, v: str, deleted: bool = False) -> dict:
        vs = self.versions(subject, deleted=True)
        live = [x for x in vs if deleted or not x["deleted"]]
        if v in ("latest", "-1"):
            if not live:
                raise subject_not_found(subject)
            return live[-1]
        if not re.fullmatch(r"[0-9]+", v) or int(v) < 1 or int(v) > 2**31 - 1:
            raise ApiError(422, 42202, f"The specified version '{v}' is not a valid version id. "
                           "Allowed values are between [1, 2^31-1] and the string \"latest\"")
        for x in live:
            if x["version"] == int(v):
                return x
        raise version_not_found(v)


def parse_schema_body(body: dict) -> tuple[str, str, list]:
    schema = body.get("schema")
    if not isinstance(schema, str):
        raise ApiError(422, 42201, "Invalid schema: the request needs a \"schema\" string")
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type not in SCHEMA_TYPES:
        raise ApiError(422, 42201, f"Invalid schema type {schema_type}")
    refs = body.get("references") or []
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise ApiError(422, 42201, "Invalid schema: \"references\" must be a list of objects")
    return schema, schema_type, refs


def subject_version_doc(subject: str, v: dict, s: dict) -> dict:
    doc = {"subject": subject, "version": v["version"], "id": v["id"]}
    if s["schemaType"] != "AVRO":
        doc["schemaType"] = s["schemaType"]
    if s["references"]:
        doc["references"] = s["references"]
    doc["schema"] = s["schema"]
    return doc


# --- faults ---------------------------------------------------------------------------------

class Faults:
    def __init__(self, fail_first: int):
        self.lock = threading.Lock()
        self.status, self.error_code = 503, None
        self.until = 0.0
        self.count = fail_first
        self.delay = 0.0

    def set(self, body: dict) -> dict:
        with self.lock:
            self.status = int(body.get("status", 503))
            self.error_code = body.get("error_code")
            self.until = time.monotonic() + float(body.get("for_s", 0))
            self.count = int(body.get("count", 0))
            self.delay = float(body.get("delay_s", 0))
            return self.describe()

    def describe(self) -> dict:
        return {"status": self.status, "remaining_s": max(0.0, self.until - time.monotonic()),
                "count": self.count, "delay_s": self.delay}

    def take(self) -> tuple[float, int | None, int | None]:
        """(delay, status or None, error_code) for the next API request."""
        with self.lock:
            fail = False
            if time.monotonic() < self.until:
                fail = True
            elif self.count > 0:
                self.count -= 1
                fail = True
            if not fail:
                return self.delay, None, None
            code = self.error_code
            if code is None:
                code = 50003 if self.status >= 500 else self.status * 100
            return self.delay, self.status, code


# --- HTTP -----------------------------------------------------------------------------------

ROUTES: list[tuple[str, re.Pattern, str, object]] = []


def route(method: str, pattern: str):
    """Registers a handler; `{x}` in the pattern is one percent-decoded path segment."""
    rx = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "/?$")

    def wrap(fn):
        ROUTES.append((method, rx, pattern, fn))
        return fn

    return wrap


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Java client expects
    server_version = "ducklake-sink-test-registry"
    sys_version = ""

    # Set on the class by main().
    registry: Registry
    faults: Faults
    user_info: str | None
    quiet: bool
    counts: dict[str, int]
    counts_lock = threading.Lock()

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write(f"schema-registry: {fmt % args}\n")

    def log_request(self, code="-", size="-"):
        if not self.quiet:
            code = getattr(code, "value", code)
            sys.stderr.write(f"schema-registry: {self.command} {self.path} {code}\n")

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def send_json(self, status: int, doc) -> None:
        data = json.dumps(doc, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="schema-registry"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error_json(self, status: int, code: int, message: str) -> None:
        self.send_json(status, {"error_code": code, "message": message})

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiError(400, 400, "Unrecognized request body: not JSON") from None

    def authorized(self) -> bool:
        if not self.user_info:
            return True
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(h[6:].strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given, self.user_info.encode())

    def dispatch(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        is_admin = path.startswith("/__admin/")
        try:
            # Read the body first: a keep-alive connection must not be left with unread bytes.
            body = self.read_body() if self.command in ("POST", "PUT") else {}
            found = None
            for method, rx, pattern, fn in ROUTES:
                m = rx.match(path)
                if m and method == self.command:
                    found = (pattern, fn, {k: unquote(v) for k, v in m.groupdict().items()})
                    break
            if not is_admin:
                with self.counts_lock:
                    key = f"{self.command} {found[0] if found else '(unknown)'}"
                    self.counts[key] = self.counts.get(key, 0) + 1
                delay, status, code = self.faults.take()
                if delay:
                    time.sleep(delay)
                if status == 0:
                    self.close_connection = True
                    self.log_message("%s %s: connection closed (fault)", self.command, self.path)
                    return
                if status is not None:
                    self.send_error_json(status, code, f"Injected failure: HTTP {status}")
                    return
                if not self.authorized():
                    self.send_error_json(401, 401, "Unauthorized")
                    return
            if found is None:
                if any(rx.match(path) for _, rx, _, _ in ROUTES):
                    self.send_error_json(405, 405, "HTTP 405 Method Not Allowed")
                else:
                    self.send_error_json(404, 404, "HTTP 404 Not Found")
                return
            _, fn, args = found
            status, doc = fn(self, body, query, **args)
            if isinstance(doc, RawText):
                data = doc.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self.send_json(status, doc)
        except ApiError as e:
            self.send_error_json(e.status, e.error_code, e.message)
        except Exception as e:  # noqa: BLE001 - answer like Confluent's store error
            self.log_message("internal error on %s %s: %r", self.command, self.path, e)
            self.send_error_json(500, 50001, f"Error in the backend data store: {e}")


class RawText(str):
    """A text/plain answer (the /schema endpoints return the schema alone)."""


def flag(query: dict, name: str) -> bool:
    return query.get(name, ["false"])[-1].lower() == "true"


# --- API ------------------------------------------------------------------------------------

@route("GET", "/")
def root(h, body, q):
    return 200, {}


@route("GET", "/schemas/types")
def schema_types(h, body, q):
    return 200, list(SCHEMA_TYPES)


@route("POST", "/subjects/{subject}/versions")
def register(h, body, q, subject):
    schema, schema_type, refs = parse_schema_body(body)
    # ?normalize=true needs nothing more: identity is always the key-sorted form.
    reg = h.registry
    with reg.lock:
        if reg.mode.get(subject, reg.mode.get("", "READWRITE")) == "READONLY":
            raise ApiError(422, 42205, f"Subject {subject} is in read-only mode")
        stored, ident = canonical(schema, schema_type)
        key = schema_type + "\n" + references_key(refs) + "\n" + ident
        sid = reg.by_key.get(key)
        vs = reg.subjects.get(subject, [])
        if sid is not None and any(v["id"] == sid and not v["deleted"] for v in vs):
            return 200, {"id": sid}
        if sid is None:
            sid = max(reg.schemas, default=0) + 1
            reg.schemas[sid] = {"schema": stored, "schemaType": schema_type, "references": refs}
            reg.by_key[key] = sid
        reg.subjects[subject] = vs + [{"version": max((v["version"] for v in vs), default=0) + 1,
                                       "id": sid, "deleted": False}]
        reg.save()
    return 200, {"id": sid}


@route("POST", "/subjects/{subject}")
def lookup(h, body, q, subject):
    schema, schema_type, refs = parse_schema_body(body)
    reg = h.registry
    with reg.lock:
        deleted = flag(q, "deleted")
        if not [v for v in reg.subjects.get(subject, []) if deleted or not v["deleted"]]:
            raise subject_not_found(subject)
        key = Registry._key(schema, schema_type, refs)
        sid = reg.by_key.get(key)
        for v in reversed(reg.subjects[subject]):
            if v["id"] == sid and (deleted or not v["deleted"]):
                return 200, subject_version_doc(subject, v, reg.schemas[sid])
    raise schema_not_found()


def schema_by_id(reg: Registry, sid: str) -> dict:
    if not re.fullmatch(r"[0-9]+", sid) or int(sid) not in reg.schemas:
        raise schema_not_found()
    return reg.schemas[int(sid)]


@route("GET", "/schemas/ids/{sid}")
def get_schema(h, body, q, sid):
    with h.registry.lock:
        s = schema_by_id(h.registry, sid)
        doc = {}
        if s["schemaType"] != "AVRO":
            doc["schemaType"] = s["schemaType"]
        doc["schema"] = s["schema"]
        if s["references"]:
            doc["references"] = s["references"]
        if flag(q, "fetchMaxId"):
            doc["maxId"] = max(h.registry.schemas)
    return 200, doc


@route("GET", "/schemas/ids/{sid}/schema")
def get_schema_text(h, body, q, sid):
    with h.registry.lock:
        return 200, RawText(schema_by_id(h.registry, sid)["schema"])


def _uses(reg: Registry, sid: str, deleted: bool) -> list[tuple[str, int]]:
    schema_by_id(reg, sid)
    return [(s, v["version"]) for s, vs in sorted(reg.subjects.items()) for v in vs
            if v["id"] == int(sid) and (deleted or not v["deleted"])]


@route("GET", "/schemas/ids/{sid}/versions")
def get_schema_versions(h, body, q, sid):
    with h.registry.lock:
        return 200, [{"subject": s, "version": v}
                     for s, v in _uses(h.registry, sid, flag(q, "deleted"))]


@route("GET", "/schemas/ids/{sid}/subjects")
def get_schema_subjects(h, body, q, sid):
    with h.registry.lock:
        return 200, sorted({s for s, _ in _uses(h.registry, sid, flag(q, "deleted"))})


@route("GET", "/subjects")
def list_subjects(h, body, q):
    deleted = flag(q, "deleted")
    prefix = q.get("subjectPrefix", [""])[-1]
    with h.registry.lock:
        return 200, sorted(s for s, vs in h.registry.subjects.items()
                           if s.startswith(prefix) and any(deleted or not v["deleted"] for v in vs))


@route("GET", "/subjects/{subject}/versions")
def list_versions(h, body, q, subject):
    with h.registry.lock:
        return 200, [v["version"] for v in h.registry.versions(subject, flag(q, "deleted"))]


@route("GET", "/subjects/{subject}/versions/{version}")
def get_version(h, body, q, subject, version):
    reg = h.registry
    with reg.lock:
        v = reg.version(subject, version, flag(q, "deleted"))
        return 200, subject_version_doc(subject, v, reg.schemas[v["id"]])


@route("GET", "/subjects/{subject}/versions/{version}/schema")
def get_version_schema(h, body, q, subject, version):
    reg = h.registry
    with reg.lock:
        return 200, RawText(reg.schemas[reg.version(subject, version, flag(q, "deleted"))["id"]]
                            ["schema"])


@route("DELETE", "/subjects/{subject}")
def delete_subject(h, body, q, subject):
    reg = h.registry
    with reg.lock:
        vs = reg.subjects.get(subject)
        if not vs:
            raise subject_not_found(subject)
        if flag(q, "permanent"):
            if any(not v["deleted"] for v in vs):
                raise ApiError(404, 40405, f"Subject '{subject}' was not deleted first before "
                               "being permanently deleted")
            gone = [v["version"] for v in vs]
            del reg.subjects[subject]
        else:
            gone = [v["version"] for v in vs if not v["deleted"]]
            if not gone:
                raise ApiError(404, 40404, f"Subject '{subject}' was soft deleted.Set "
                               "permanent=true to delete permanently")
            for v in vs:
                v["deleted"] = True
        reg.config.pop(subject, None)
        reg.save()
    return 200, gone


@route("DELETE", "/subjects/{subject}/versions/{version}")
def delete_version(h, body, q, subject, version):
    reg = h.registry
    with reg.lock:
        permanent = flag(q, "permanent")
        v = reg.version(subject, version, deleted=permanent)
        if permanent:
            if not v["deleted"]:
                raise ApiError(404, 40407, f"Subject '{subject}' Version {v['version']} was not "
                               "deleted first before being permanently deleted")
            reg.subjects[subject].remove(v)
            if not reg.subjects[subject]:
                del reg.subjects[subject]
        else:
            v["deleted"] = True
        reg.save()
        return 200, v["version"]


def _config_body(body: dict, field: str, allowed: tuple[str, ...]) -> str:
    value = body.get(field)
    if value not in allowed:
        raise ApiError(422, 42203 if field == "compatibility" else 42204,
                       f"Invalid {field} level: {value}")
    return value


@route("GET", "/config")
def get_config(h, body, q):
    with h.registry.lock:
        return 200, {"compatibilityLevel": h.registry.config.get("", "BACKWARD")}


@route("PUT", "/config")
def put_config(h, body, q):
    level = _config_body(body, "compatibility", COMPATIBILITY)
    with h.registry.lock:
        h.registry.config[""] = level
        h.registry.save()
    return 200, {"compatibility": level}


@route("GET", "/config/{subject}")
def get_subject_config(h, body, q, subject):
    reg = h.registry
    with reg.lock:
        level = reg.config.get(subject)
        if level is None:
            if not flag(q, "defaultToGlobal"):
                raise ApiError(404, 40408, f"Subject '{subject}' does not have subject-level "
                               "compatibility configured")
            level = reg.config.get("", "BACKWARD")
        return 200, {"compatibilityLevel": level}


@route("PUT", "/config/{subject}")
def put_subject_config(h, body, q, subject):
    level = _config_body(body, "compatibility", COMPATIBILITY)
    with h.registry.lock:
        h.registry.config[subject] = level
        h.registry.save()
    return 200, {"compatibility": level}


@route("DELETE", "/config/{subject}")
def delete_subject_config(h, body, q, subject):
    with h.registry.lock:
        level = h.registry.config.pop(subject, None)
        if level is None:
            raise subject_not_found(subject)
        h.registry.save()
    return 200, {"compatibilityLevel": level}


@route("GET", "/mode")
def get_mode(h, body, q):
    with h.registry.lock:
        return 200, {"mode": h.registry.mode.get("", "READWRITE")}


@route("PUT", "/mode")
def put_mode(h, body, q):
    mode = _config_body(body, "mode", MODES)
    with h.registry.lock:
        h.registry.mode[""] = mode
        h.registry.save()
    return 200, {"mode": mode}


@route("GET", "/mode/{subject}")
def get_subject_mode(h, body, q, subject):
    with h.registry.lock:
        return 200, {"mode": h.registry.mode.get(subject, h.registry.mode.get("", "READWRITE"))}


@route("PUT", "/mode/{subject}")
def put_subject_mode(h, body, q, subject):
    mode = _config_body(body, "mode", MODES)
    with h.registry.lock:
        h.registry.mode[subject] = mode
        h.registry.save()
    return 200, {"mode": mode}


@route("POST", "/compatibility/subjects/{subject}/versions/{version}")
def compatibility(h, body, q, subject, version):
    parse_schema_body(body)
    with h.registry.lock:
        h.registry.version(subject, version)
    return 200, {"is_compatible": True}


@route("POST", "/compatibility/subjects/{subject}/versions")
def compatibility_all(h, body, q, subject):
    parse_schema_body(body)
    return 200, {"is_compatible": True}


# --- admin (tests) --------------------------------------------------------------------------

@route("POST", "/__admin/fail")
def admin_fail(h, body, q):
    return 200, h.faults.set(body)


@route("GET", "/__admin/fail")
def admin_fail_get(h, body, q):
    with h.faults.lock:
        return 200, h.faults.describe()


@route("GET", "/__admin/requests")
def admin_requests(h, body, q):
    with h.counts_lock:
        return 200, {"total": sum(h.counts.values()), "by_route": dict(sorted(h.counts.items()))}


@route("POST", "/__admin/reset-counts")
def admin_reset_counts(h, body, q):
    with h.counts_lock:
        h.counts.clear()
    return 200, {}


# --- main -----------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description="A small in-memory Confluent-compatible schema "
                                "registry for tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: pick a free port")
    p.add_argument("--state", metavar="FILE", help="persist schemas here; read back at start")
    p.add_argument("--user-info", metavar="USER:PASS", help="require HTTP basic auth")
    p.add_argument("--fail-first", type=int, default=0, metavar="N",
                   help="answer the first N API requests with 503")
    p.add_argument("--quiet", action="store_true", help="no request log on stderr")
    a = p.parse_args(argv)
    if a.user_info is not None and ":" not in a.user_info:
        p.error("--user-info expects USER:PASS")

    Handler.registry = Registry(a.state)
    Handler.faults = Faults(a.fail_first)
    Handler.user_info = a.user_info
    Handler.quiet = a.quiet
    Handler.counts = {}

    server = Server((a.host, a.port), Handler)
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)

    def stop(signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
