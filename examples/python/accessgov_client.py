"""A small client of `harness serve`, the accessgov host's HTTP/JSON API.

Standard library only (Python 3.9+). Every method returns the server's JSON; an error answer
raises ApiError carrying the server's error shape (`type`, `message`, `error`).

    client = Client("http://127.0.0.1:8443", api_key="...")
    client.put_tenant("acme-chatgpt", {...})
    for account in client.sync("acme-chatgpt"):
        ...
"""

import json
import urllib.error
import urllib.parse
import urllib.request


class ApiError(Exception):
    """An error answer of the server: its HTTP status and the body's fields."""

    def __init__(self, status, body):
        self.status = status
        self.body = body if isinstance(body, dict) else {"type": "unknown", "message": str(body)}
        self.type = self.body.get("type")
        self.error = self.body.get("error")
        super().__init__(f"{status} {self.type}: {self.body.get('message')}")


class Client:
    """The API of one server, as one API key."""

    def __init__(self, base_url, api_key, timeout=60):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _request(self, method, path, body=None, query=None, stream=False):
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None
        headers = {"Authorization": f"Bearer {self.api_key}"}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw.decode(errors="replace")
            raise ApiError(error.code, parsed) from None
        if stream:
            return response
        with response:
            raw = response.read()
        return json.loads(raw) if raw else None

    # Tenants and connectors.
    def connectors(self):
        return self._request("GET", "/v1/connectors")

    def tenants(self):
        return self._request("GET", "/v1/tenants")

    def put_tenant(self, tenant, spec):
        return self._request("PUT", f"/v1/tenants/{tenant}", body=spec)

    def delete_tenant(self, tenant):
        return self._request("DELETE", f"/v1/tenants/{tenant}")

    # Reads.
    def info(self, tenant):
        return self._request("GET", f"/v1/tenants/{tenant}/info")

    def test_connection(self, tenant):
        return self._request("POST", f"/v1/tenants/{tenant}/test-connection")

    def accounts(self, tenant, cursor=None, size=None):
        return self._request("GET", f"/v1/tenants/{tenant}/accounts", query={"cursor": cursor, "size": size})

    def account(self, tenant, id_or_email):
        return self._request("GET", f"/v1/tenants/{tenant}/accounts/{urllib.parse.quote(id_or_email)}")

    def entitlements(self, tenant, cursor=None, size=None):
        return self._request("GET", f"/v1/tenants/{tenant}/entitlements", query={"cursor": cursor, "size": size})

    def sync(self, tenant, size=1000):
        """Every account of the tenant, one at a time, as the server streams them (NDJSON)."""
        with self._request("GET", f"/v1/tenants/{tenant}/sync", query={"size": size}, stream=True) as response:
            for line in response:
                if not line.strip():
                    continue
                item = json.loads(line)
                if "error" in item and "id" not in item:
                    raise ApiError(502, item["error"])
                yield item

    # Writes.
    def grant(self, tenant, account, entitlement, dry_run=False):
        return self._request("POST", f"/v1/tenants/{tenant}/grant", body={"account": account, "entitlement": entitlement, "dry_run": dry_run})

    def revoke(self, tenant, account, entitlement, dry_run=False):
        return self._request("POST", f"/v1/tenants/{tenant}/revoke", body={"account": account, "entitlement": entitlement, "dry_run": dry_run})

    def batch(self, tenant, changes, dry_run=False):
        return self._request("POST", f"/v1/tenants/{tenant}/batch", body={"changes": changes, "dry_run": dry_run})

    def start_job(self, tenant, changes, dry_run=False):
        return self._request("POST", f"/v1/tenants/{tenant}/jobs", body={"changes": changes, "dry_run": dry_run})

    def job(self, job_id, items=False):
        return self._request("GET", f"/v1/jobs/{job_id}", query={"items": "true" if items else None})

    def cancel_job(self, job_id):
        return self._request("DELETE", f"/v1/jobs/{job_id}")

    def audit(self, tenant=None, limit=100):
        return self._request("GET", "/v1/audit", query={"tenant": tenant, "limit": limit})
