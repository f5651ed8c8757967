#!/usr/bin/env python3
"""A stdlib-only client for a guardctl daemon: signs requests as ../signing.md describes.

``signed_request`` signs version 2 (the exact body bytes) by default. Version 1 (``version=1``) follows the
HY-MT1.5 web-inference article's client (sorted ``k=v`` joined by ``&``, the string to sign joined by newlines,
hex HMAC-SHA256), with one correction: booleans sign as ``true``/``false`` and numbers as their JSON text, exactly
as the JSON body carries them (the article's ``f"{v}"`` would sign ``True``). Version 1 signs only top-level
strings, numbers and booleans, so ``signed_request`` refuses to sign anything else with it (the daemon would
answer 401 ``v1_unsigned_member`` / ``v1_ambiguous_param``).

    python3 guardctl_client.py --selftest signing-vectors.json    # reproduce the worked examples, exit 0/1
"""
import hashlib
import hmac
import http.client
import json
import secrets
import sys
import time
import urllib.parse

__all__ = [
    "generate_signature", "generate_signature_v2", "string_to_sign_v1", "string_to_sign_v2", "content_sha256",
    "canonical_query", "new_nonce", "signed_request", "v1_refusal", "GuardctlError",
]


class GuardctlError(Exception):
    """The request could not be completed. ``status`` and ``code`` are the server's answer when it gave one
    (``413`` / ``"body_too_large"`` for a body over the daemon's ``--max-body``), else ``None`` / a local code
    (``"connection_failed"``); ``message`` and ``hint`` as the server wrote them."""

    def __init__(self, status, code, message, hint=None):
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.hint = hint


class _JsonNumber(str):
    """A number kept as its JSON text (json.loads hook), so 1.50 signs as "1.50", as the server sees it."""


def _param_value(value):
    """The text version 1 signs for a value, or None for values it leaves out (objects, arrays, null)."""
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "true" if value else "false"
    if isinstance(value, _JsonNumber):
        return str(value)
    if isinstance(value, (int, float)):
        return json.dumps(value, allow_nan=False)
    if isinstance(value, str):
        return value
    return None


def _pairs(params):
    """A dict or a list of (name, value) pairs, as a list of pairs."""
    if params is None:
        return []
    return list(params.items()) if isinstance(params, dict) else list(params)


def string_to_sign_v1(method, path, params, timestamp, nonce):
    pairs = [(k, _param_value(v)) for k, v in _pairs(params)]
    pairs = [(k, v) for k, v in pairs if v is not None]
    # Python compares str by code point, as the contract requires; sorted() is stable for repeated names.
    param_str = "&".join(f"{k}={v}" for k, v in sorted(pairs, key=lambda kv: kv[0]))
    return f"{method.upper()}\n{path}\n{param_str}\n{timestamp}\n{nonce}"


def generate_signature(secret, method, path, params, timestamp, nonce):
    """Version 1: params are the query parameters (decoded) plus the JSON body's top-level members."""
    message = string_to_sign_v1(method, path, params, timestamp, nonce)
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def _rfc3986(text):
    return urllib.parse.quote(str(text), safe="~", encoding="utf-8")


def canonical_query(query):
    encoded = sorted((_rfc3986(k), _rfc3986(v)) for k, v in _pairs(query))
    return "&".join(f"{k}={v}" for k, v in encoded)


def content_sha256(body):
    if body is None:
        body = b""
    return hashlib.sha256(body.encode("utf-8") if isinstance(body, str) else body).hexdigest()


def string_to_sign_v2(method, path, query, body, timestamp, nonce):
    return "\n".join(["GUARD2-HMAC-SHA256", method.upper(), path, canonical_query(query), content_sha256(body),
                      str(timestamp), nonce])


def generate_signature_v2(secret, method, path, query, body, timestamp, nonce):
    """Version 2: query as (name, value) pairs or a dict; body as the exact bytes (or str) sent, or None."""
    message = string_to_sign_v2(method, path, query, body, timestamp, nonce)
    return hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def new_nonce():
    return secrets.token_hex(16)


def _body_bytes(body):
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _body_params(raw):
    """Version 1's members of a JSON object body, numbers as their JSON text."""
    try:
        parsed = json.loads(raw.decode("utf-8"), parse_int=_JsonNumber, parse_float=_JsonNumber)
    except ValueError:
        return []
    return list(parsed.items()) if isinstance(parsed, dict) else []


def v1_refusal(query_pairs, raw):
    """Why the daemon would refuse this request under version 1, or None (the rule of ../signing.md)."""
    members = []
    if raw:
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except ValueError:
            return "a body that is not JSON is not signed by version 1"
        if not isinstance(parsed, dict):
            return "version 1 signs only a JSON object body"
        for name, value in parsed.items():
            if value is None or isinstance(value, (dict, list)):
                return f"member {name!r} is {type(value).__name__}, which version 1 does not sign"
            members.append((name, value if isinstance(value, str) else ""))
    for name, value in list(query_pairs) + members:
        if "&" in name or "=" in name:
            return f"name {name!r} holds '&' or '=', which version 1 cannot tell from a separator"
        # A value holding "&NAME=" reads like a second parameter (any NAME without spaces: the cautious reading).
        for part in value.split("&")[1:]:
            inner = part.split("=", 1)[0]
            if "=" in part and inner and not any(c.isspace() for c in inner):
                return f"{name!r} holds '&{inner}=', which version 1 signs like a separate parameter"
    return None


def signed_request(base_url, key_id, secret, method, path, query=None, body=None, version=2, timeout=30,
                   timestamp=None, nonce=None):
    """Sends one signed request; returns (status, headers, parsed JSON or text). HTTP errors are returned too,
    except a body too large for the server: that, and a request that cannot be completed, raise GuardctlError
    (with the server's status and code when it answered: 413 body_too_large, even when the server stopped
    reading the body and the send broke off).

    query: dict or (name, value) pairs; body: a JSON-able object, or the exact str/bytes to send (JSON).
    version: 2 (default) signs the exact bytes; 1 only seed-style bodies ({"text": ...}), else ValueError.
    """
    method = method.upper()
    raw = _body_bytes(body)
    timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
    nonce = nonce or new_nonce()
    pairs = [(str(k), str(v)) for k, v in _pairs(query)]
    headers = {"X-API-Key": key_id, "X-Timestamp": timestamp, "X-Nonce": nonce}
    if raw is not None:
        headers["Content-Type"] = "application/json"
    if version == 2:
        headers["X-Signature-Version"] = "2"
        headers["X-Content-SHA256"] = content_sha256(raw)
        headers["X-Signature"] = generate_signature_v2(secret, method, path, pairs, raw, timestamp, nonce)
    else:
        refusal = v1_refusal(pairs, raw)
        if refusal:
            raise ValueError(f"version 1 cannot sign this request: {refusal}; use version=2")
        members = _body_params(raw) if raw else []
        names = {k for k, _ in pairs}
        clash = [k for k, _ in members if k in names]
        if clash:
            raise ValueError(f"parameter {clash[0]!r} appears in both the query and the body (the server answers 400)")
        headers["X-Signature"] = generate_signature(secret, method, path, pairs + members, timestamp, nonce)
    target = urllib.parse.urlsplit(base_url.rstrip("/") + path)
    url_path = target.path + ("?" + "&".join(f"{_rfc3986(k)}={_rfc3986(v)}" for k, v in pairs) if pairs else "")
    connection_type = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(target.netloc, timeout=timeout)
    try:
        try:
            connection.request(method, url_path, body=raw, headers=headers)
        except (BrokenPipeError, ConnectionResetError) as err:
            # The server answered and closed before the whole body was sent (413 body_too_large): its answer
            # is usually still readable, and says why.
            try:
                response = connection.getresponse()
            except (OSError, http.client.HTTPException):
                raise GuardctlError(None, "connection_failed", f"the server closed the connection while the body "
                                    f"was sent ({err.__class__.__name__}); a body over its --max-body does that",
                                    "send a smaller body, or raise the daemon's --max-body") from err
            answer = _decode(response.read())
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise GuardctlError(response.status, error.get("code", "http_error"), error.get("message", str(answer)),
                                error.get("hint")) from err
        except OSError as err:
            raise GuardctlError(None, "connection_failed", f"cannot reach {target.netloc}: {err}") from err
        response = connection.getresponse()
        answer = _decode(response.read())
        if response.status == 413:
            # The same error whether the server's answer arrived whole or only after a broken pipe (which depends
            # on timing): the body is too large for this server and resending it cannot help.
            error = answer.get("error", {}) if isinstance(answer, dict) else {}
            raise GuardctlError(413, error.get("code", "body_too_large"), error.get("message", str(answer)), error.get("hint"))
        return response.status, dict(response.getheaders()), answer
    finally:
        connection.close()


def _decode(data):
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def selftest(vectors_path):
    """Reproduces every vector of signing-vectors.json; returns the number of failures."""
    with open(vectors_path, encoding="utf-8") as f:
        vectors = json.load(f)
    failures = 0
    cases = [("v1", v, string_to_sign_v1(v["method"], v["path"], v["params"], v["timestamp"], v["nonce"]),
              generate_signature(v["secret"], v["method"], v["path"], v["params"], v["timestamp"], v["nonce"]))
             for v in vectors.get("v1", [])]
    cases += [("v2", v, string_to_sign_v2(v["method"], v["path"], v["query"], v["body"], v["timestamp"], v["nonce"]),
               generate_signature_v2(v["secret"], v["method"], v["path"], v["query"], v["body"], v["timestamp"],
                                     v["nonce"]))
              for v in vectors.get("v2", [])]
    for i, (version, v, sts, signature) in enumerate(cases):
        ok = sts == v["string_to_sign"] and signature == v["signature"]
        if version == "v2":
            ok = ok and content_sha256(v["body"]) == v["content_sha256"]
        failures += 0 if ok else 1
        print(f"{'ok  ' if ok else 'FAIL'} {version} {v['method']} {v['path']} nonce={v['nonce']}")
        if not ok:
            print(f"     expected {v['string_to_sign']!r} -> {v['signature']}\n     got      {sts!r} -> {signature}")
    if not cases:
        print("no vectors found")
        return 1
    print(f"{len(cases) - failures}/{len(cases)} vectors reproduced")
    return failures


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--selftest":
        sys.exit(1 if selftest(sys.argv[2]) else 0)
    print(f"usage: {sys.argv[0]} --selftest signing-vectors.json", file=sys.stderr)
    sys.exit(2)
