"""The worked example of docs/server.md: register a ChatGPT workspace as a tenant, sync it
through the stream, apply a batch with a dry run first, and read the audit log's record of it.

    python3 examples/python/example.py --url http://127.0.0.1:8443 --key KEY \
        --base-url http://127.0.0.1:8080/backend-api --account-id acct-mock --token mock-owner-token

Prints one JSON object summing up what it did; exits non-zero on any error.
"""

import argparse
import json
import sys
import urllib.parse

from accessgov_client import ApiError, Client


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--key", required=True, help="an API key of the server")
    parser.add_argument("--base-url", required=True, help="the workspace console's base URL")
    parser.add_argument("--account-id", required=True, help="the workspace id")
    parser.add_argument("--token", required=True, help="the workspace's owner token")
    parser.add_argument("--tenant", default="example-workspace")
    parser.add_argument("--customer", default="acme")
    args = parser.parse_args()

    client = Client(args.url, args.key)
    parts = urllib.parse.urlsplit(args.base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    client.put_tenant(args.tenant, {
        "connector": "chatgpt",
        "customer": args.customer,
        "allowed_origins": [origin],
        "allow_private_addresses": parts.hostname in ("127.0.0.1", "localhost", "::1"),
        "settings": {"base-url": args.base_url, "account-id": args.account_id},
        "credentials": [{"origin": origin, "bearer_token": args.token,
                         "headers": {"chatgpt-account-id": args.account_id}}],
    })

    members = [a for a in client.sync(args.tenant, size=100) if a["status"] == "active"]
    newcomers = [f"python-example-{n}@example.com" for n in range(3)]
    changes = [{"action": "grant", "account": {"email": e}, "entitlement": "workspace"} for e in newcomers]
    changes.append({"action": "set", "account": {"id": members[-1]["id"]},
                    "exclusion_group": "role", "entitlement": "role:admin"})

    planned = client.batch(args.tenant, changes, dry_run=True)["results"]
    if any(r["error"] or r["result"]["outcome"] not in ("planned", "already-in-state") for r in planned):
        raise SystemExit(f"the dry run did not plan every change: {planned}")
    applied = client.batch(args.tenant, changes)["results"]
    failed = [r["error"] for r in applied if r["error"]]
    if failed:
        raise SystemExit(f"changes failed: {failed}")

    records = client.audit(tenant=args.tenant, limit=10)
    writes = [r for r in records if r["operation"] == "batch" and not r["dry_run"]]
    dry = [r for r in records if r["operation"] == "batch" and r["dry_run"]]
    if not writes or not dry:
        raise SystemExit(f"the audit log lacks the batch: {records}")
    record = writes[-1]

    print(json.dumps({
        "synced": len(members),
        "planned": [r["result"]["outcome"] for r in planned],
        "applied": [r["result"]["outcome"] for r in applied],
        "audit": {"key": record["key"], "outcomes": record["outcomes"], "sent": len(record["sent"]),
                  "dry_run_sent": len(dry[-1]["sent"])},
    }))


if __name__ == "__main__":
    try:
        main()
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
