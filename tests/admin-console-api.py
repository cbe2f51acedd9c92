#!/usr/bin/env python3
"""The admin console over HTTP, as a browser's forms and a script's API calls use it.

usage: admin-console-api.py HOST PORT ADMIN_PASSWORD TOKEN IMAPS_PORT

Only the standard library: http.client with cookies handled by hand (the session cookie
is Secure, which Python's cookie jar never sends over plain HTTP, while browsers do on
loopback). Prints "admin console ok" when every check passed; any failed check raises.
"""
import hashlib
import html
import http.client
import json
import re
import ssl
import subprocess
import sys
import tempfile
import urllib.parse

HOST, PORT, PASSWORD, TOKEN = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
IMAPS = int(sys.argv[5])

PAGES = ["/", "/domains", "/accounts", "/accounts/x@example.test", "/quarantine", "/queue",
         "/trace", "/charts/messages_accepted.svg"]
POSTS = ["/domains", "/accounts", "/accounts/x@example.test/delete", "/queue/00/retry",
         "/quarantine/00/release", "/logout"]
API_GETS = ["/api/v1/status", "/api/v1/domains", "/api/v1/accounts", "/api/v1/aliases",
            "/api/v1/quarantine", "/api/v1/queue", "/api/v1/accounts/x@example.test"]


def request(method, path, body=None, headers=None, source="127.0.0.1"):
    conn = http.client.HTTPConnection(HOST, PORT, timeout=20, source_address=(source, 0))
    headers = dict(headers or {})
    if isinstance(body, dict) and headers.get("Content-Type") == "application/json":
        body = json.dumps(body)
    elif isinstance(body, dict):
        body = urllib.parse.urlencode(body)
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def log_in(name, password, source="127.0.0.1"):
    """GET the login page (its CSRF cookie and field), then POST the form."""
    status, h, page = request("GET", "/login", source=source)
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    cookie = h["set-cookie"].split(";")[0]
    check("Path=/login" in h["set-cookie"] and "SameSite=Strict" in h["set-cookie"], "login cookie")
    return request("POST", "/login", {"name": name, "password": password, "csrf": token},
                   {"Cookie": cookie}, source=source)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


# 1. Nothing without a login: pages redirect to /login, the API answers 401.
for path in PAGES:
    status, h, _ = request("GET", path)
    check(status == 303 and h.get("location") == "/login", f"GET {path} unauthenticated: {status}")
for path in POSTS:
    status, h, _ = request("POST", path, {"csrf": "x"})
    check(status == 303 and h.get("location") == "/login", f"POST {path} unauthenticated: {status}")
for path in API_GETS:
    status, _, body = request("GET", path)
    check(status == 401 and "error" in json.loads(body), f"GET {path} unauthenticated: {status}")
status, _, _ = request("POST", "/api/v1/domains", {"name": "x.test"}, {"Content-Type": "application/json"})
check(status == 401, f"API POST unauthenticated: {status}")
status, _, _ = request("GET", "/api/v1/accounts", headers={"Authorization": "Bearer gnt_forged"})
check(status == 401, f"a forged token: {status}")

# 2. A login form posted without its CSRF token (from another site) is refused.
status, _, _ = request("POST", "/login", {"name": "admin", "password": PASSWORD})
check(status == 403, f"login without its CSRF token: {status}")
status, _, _ = request("POST", "/login", {"name": "admin", "password": PASSWORD, "csrf": "0" * 64},
                       {"Cookie": "gannet_login=" + "1" * 64})
check(status == 403, f"login with a token not its cookie's: {status}")

# Lockout: from 127.0.0.2, five wrong passwords lock that client out, the right one too.
for i in range(5):
    status, h, _ = log_in("admin", f"Wrong{i}x", source="127.0.0.2")
    check(status == 303 and "error=Wrong" in h.get("location", ""), f"wrong password {i}: {h}")
status, h, _ = log_in("admin", PASSWORD, source="127.0.0.2")
check("Too+many" in h.get("location", "") and "gannet_admin" not in h.get("set-cookie", ""), f"locked out: {h}")

# 3. Log in from 127.0.0.1: a session cookie with the attributes the issue asks for.
status, h, _ = log_in("admin", PASSWORD)
check(status == 303 and h.get("location") == "/", f"login: {status} {h}")
cookie = h["set-cookie"]
for attribute in ("HttpOnly", "Secure", "SameSite=Strict"):
    check(attribute in cookie, f"cookie attribute {attribute}: {cookie}")
session = {"Cookie": cookie.split(";")[0]}
status, h, page = request("GET", "/", headers=session)
check(status == 200 and "Dashboard" in page, f"dashboard: {status}")
csp = h.get("content-security-policy", "")
check("script-src 'self'" in csp and "frame-ancestors 'none'" in csp, f"CSP: {csp}")
check(h.get("x-frame-options") == "DENY", "X-Frame-Options")
csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)

# 4. A form without its CSRF token is refused; with it, the domain is added.
status, _, _ = request("POST", "/domains", {"name": "console.test"}, session)
check(status == 403, f"POST without CSRF: {status}")
status, _, _ = request("POST", "/domains", {"name": "console.test", "csrf": "0" * 64}, session)
check(status == 403, f"POST with a wrong CSRF token: {status}")
status, h, _ = request("POST", "/domains", {"name": "console.test", "csrf": csrf}, session)
check(status == 303 and "ok=" in h["location"], f"domain add: {h}")
status, _, page = request("GET", "/domains", headers=session)
check("console.test" in page, "the new domain is listed")

# 5. The password policy is shown when a weak password is given.
status, h, _ = request("POST", "/accounts", {"address": "weak@console.test", "password": "short", "csrf": csrf}, session)
check("error=" in h["location"], f"weak password refused: {h}")
status, _, page = request("GET", h["location"], headers=session)
check("8 characters" in page or "at least" in page.lower(), "the policy's words on the page")
status, h, _ = request("POST", "/accounts", {"address": "user@console.test", "password": "Console123", "csrf": csrf}, session)
check("ok=" in h["location"], f"account add: {h}")

# 6. The API with the session: changes need X-CSRF-Token.
body = {"alias": "alias@console.test", "target": "user@console.test"}
status, _, _ = request("POST", "/api/v1/aliases", body, {**session, "Content-Type": "application/json"})
check(status == 403, f"API POST without X-CSRF-Token: {status}")
status, _, answer = request("POST", "/api/v1/aliases", body, {**session, "Content-Type": "application/json", "X-CSRF-Token": csrf})
check(status == 200, f"API alias add: {status} {answer}")
status, _, answer = request("POST", "/api/v1/aliases", "{not json", {**session, "Content-Type": "application/json", "X-CSRF-Token": csrf})
check(status == 400 and "error" in json.loads(answer), f"bad JSON: {status}")

# 7. A token works without a session or CSRF token, for reads and changes.
bearer = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
status, _, answer = request("GET", "/api/v1/accounts", headers=bearer)
accounts = json.loads(answer)
check(status == 200 and any(a["address"] == "user@console.test" for a in accounts), f"accounts: {answer}")
status, _, answer = request("POST", "/api/v1/accounts/user@console.test", {"spam_level": "high", "disabled": True}, bearer)
check(status == 200, f"account change: {answer}")
status, _, answer = request("GET", "/api/v1/accounts/user@console.test", headers=bearer)
one = json.loads(answer)
check(one["spam_level"] == "high" and one["disabled"] and one["aliases"] == ["alias@console.test"], f"account: {one}")
status, _, answer = request("POST", "/api/v1/accounts", {"address": "weak2@console.test", "password": "password"}, bearer)
check(status == 400 and "error" in json.loads(answer), f"weak password over the API: {answer}")
status, _, answer = request("DELETE", "/api/v1/domains/console.test", headers=bearer)
check(status == 400, f"a domain with accounts is not removed: {status} {answer}")
status, _, answer = request("DELETE", "/api/v1/accounts/user@console.test", headers=bearer)
check(status == 200, f"account delete: {answer}")
status, _, answer = request("GET", "/api/v1/accounts/user@console.test", headers=bearer)
check(status == 404, f"deleted account: {status}")
status, _, answer = request("DELETE", "/api/v1/domains/console.test", headers=bearer)
check(status == 200, f"domain remove: {status} {answer}")
status, _, answer = request("GET", "/api/v1/openapi.json")
check(status == 200 and "/api/v1/accounts" in json.loads(answer)["paths"], "openapi.json")

# 8. Held mail with a hostile subject shows as text.
status, _, page = request("GET", "/quarantine", headers=session)
check(status == 200, "quarantine page")
check("<script>alert" not in page and "&lt;script&gt;alert" in page, "the subject is escaped in the quarantine page")
held_id = re.search(r'href="/quarantine/([0-9a-f]{16})"', page).group(1)
status, _, page = request("GET", "/quarantine?recipient=nobody@example.test", headers=session)
check(status == 200 and held_id not in page, "the filter by recipient leaves it out")
status, _, page = request("GET", f"/quarantine/{held_id}", headers=session)
check(status == 200 and "invoice.pdf.exe" in page and "recipient: alice@example.test (held)" in page, f"the held message's page: {page[:2000]}")
check("<script>alert" not in page and "Subject: &lt;script&gt;alert(1)&lt;/script&gt;" in page,
      "its headers shown escaped, one a line")
status, _, answer = request("GET", "/api/v1/quarantine?recipient=alice@example.test", headers=bearer)
check(status == 200 and [m["id"] for m in json.loads(answer)] == [held_id], f"the API's filter: {answer}")
status, _, answer = request("GET", "/api/v1/quarantine?recipient=nobody@example.test", headers=bearer)
check(status == 200 and json.loads(answer) == [], f"the API's filter, nobody: {answer}")
status, _, answer = request("GET", f"/api/v1/quarantine/{held_id}", headers=bearer)
check(status == 200 and "Content-Type: multipart/mixed" in json.loads(answer)["ok"], f"the API's show: {answer}")
status, _, answer = request("GET", "/api/v1/quarantine/00000000000000ff", headers=bearer)
check(status == 404, f"an unknown held message: {status} {answer}")

# 8b. The trace over the API: the held message, by recipient, with its events.
status, _, answer = request("GET", "/api/v1/trace?recipient=ALICE@example.test", headers=bearer)
traces = json.loads(answer)
check(status == 200 and len(traces) == 1, f"trace: {answer}")
whats = [e["what"] for e in traces[0]["events"]]
check(whats[0].startswith("received from 127.0.0.2 <friend@outside.example>") and "held in quarantine" in whats[1], f"trace events: {whats}")
status, _, answer = request("GET", "/api/v1/trace?sender=nobody@x.test", headers=bearer)
check(status == 200 and json.loads(answer) == [], f"an empty trace: {answer}")

# 8c. Settings: written to the configuration file (kept whole when a value is bad), and
# the certificate replaced live.
status, _, page = request("GET", "/settings", headers=session)
check(status == 200, f"settings page: {status}")
config_path = html.unescape(re.search(r"Saved in <code>([^<]+)</code>", page).group(1))
before = open(config_path).read()
status, h, _ = request("POST", "/settings", {"csrf": csrf, "relay.trusted_networks": "127.0.0.1/32\nnot-a-network"}, session)
check("error=" in h["location"] and open(config_path).read() == before, f"a bad network is refused, the file untouched: {h}")
status, h, _ = request("POST", "/settings", {"csrf": csrf, "relay.trusted_networks": "127.0.0.1/32\n::1/128\n10.9.0.0/16",
                                             "limits.max_recipients": "40", "spam.default_level": "high"}, session)
check("ok=" in h["location"], f"settings saved: {h}")
after = open(config_path).read()
check("10.9.0.0/16" in after and "max_recipients = 40" in after and 'default_level = "high"' in after, f"the file: {after}")
check("[listen]" in after and "mx.example.test" in after, "the rest of the file is kept")

def served_fingerprint():
    pem = ssl.get_server_certificate((HOST, IMAPS))
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()

old_fingerprint = served_fingerprint()
with tempfile.TemporaryDirectory() as d:
    def make(name):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "30", "-subj", "/CN=mx.example.test",
                        "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.pem"], check=True, capture_output=True)
        return open(f"{d}/{name}.pem").read(), open(f"{d}/{name}.key").read()
    cert, key = make("new")
    _, other_key = make("other")
    status, h, _ = request("POST", "/settings/certificate", {"csrf": csrf, "cert": cert, "key": other_key}, session)
    check("error=" in h["location"] and served_fingerprint() == old_fingerprint, f"a key that is not the certificate's: {h}")
    status, h, _ = request("POST", "/settings/certificate", {"csrf": csrf, "cert": "garbage", "key": key}, session)
    check("error=" in h["location"], f"not PEM: {h}")
    status, h, _ = request("POST", "/settings/certificate", {"csrf": csrf, "cert": cert, "key": key}, session)
    check("ok=" in h["location"], f"certificate replaced: {h}")
    new_fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert)).hexdigest()
    check(served_fingerprint() == new_fingerprint, "IMAPS hands out the new certificate at once")

# 9. Logging out ends the session: its cookie opens nothing any more.
status, h, _ = request("POST", "/logout", {"csrf": csrf}, session)
check(status == 303 and "Max-Age=0" in h.get("set-cookie", ""), f"logout: {h}")
for path in PAGES:
    status, h, _ = request("GET", path, headers=session)
    check(status == 303 and h.get("location") == "/login", f"GET {path} after logout: {status}")
status, _, _ = request("GET", "/api/v1/status", headers=session)
check(status == 401, "the API after logout")
print("admin console ok")
