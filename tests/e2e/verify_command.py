#!/usr/bin/env python3
"""Checks the signature of cinch command records in Python, as a SOAR playbook would.

This is the playbook example of the README's "Verifying commands (SOAR)" section: the function
`verify_command` is the snippet shown there. It needs the PyPI package `cryptography`.

    python3 tests/e2e/verify_command.py cinch-signing.pub commands.jsonl   # or - for stdin

Each line whose `kind` is `command` is checked. Unsigned findings, recommendations, audit records
and dead letters are skipped; a record with a key twice in one object, without a `kind`, with an
unknown one, or signed under another kind fails, as in `cinch verify` (which also checks expiry,
replays and the command schema). Exits 0 when every command verifies, 1 otherwise.

The signed bytes are the RFC 8785 (JCS) canonical JSON of the record without `signature`. For
records without floating-point numbers (commands have none) that is exactly
`json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` in UTF-8.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key


def verify_command(record: dict, public_key_pem: bytes) -> None:
    """Raises if `record` is not a command signed by the key in `public_key_pem`."""
    key = load_pem_public_key(public_key_pem)  # an Ed25519PublicKey
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    unsigned = {k: v for k, v in record.items() if k != "signature"}
    sig = record["signature"]
    if sig["alg"] != "ed25519":
        raise ValueError(f"unsupported alg {sig['alg']!r}")
    if sig["key_id"] != hashlib.sha256(raw).hexdigest()[:16]:
        raise ValueError(f"signed by key {sig['key_id']}, not this one")
    message = json.dumps(
        unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    key.verify(base64.b64decode(sig["value"], validate=True), message)  # InvalidSignature


OTHER_KINDS = ("finding", "recommendation", "audit", "dead_letter")


def unique_keys(pairs: list) -> dict:
    """Refuses an object with a key twice: two parsers could read it differently."""
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key in {keys}")
    return dict(pairs)


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        pem = f.read()
    path = sys.argv[2] if len(sys.argv) == 3 else "-"
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    verified = failed = skipped = 0
    for n, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=unique_keys)
        except ValueError as e:
            print(f"line {n}: not JSON: {e}", file=sys.stderr)
            failed += 1
            continue
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind in OTHER_KINDS and "signature" not in record:
            skipped += 1
            continue
        if kind != "command":
            print(f"line {n}: not a command record: kind {kind!r}", file=sys.stderr)
            failed += 1
            continue
        try:
            verify_command(record, pem)
            verified += 1
        except Exception as e:  # noqa: BLE001 - any failure is reported the same way
            reason = f"{type(e).__name__} {e}".strip()
            print(f"line {n}: command_id {record.get('command_id', '?')}: {reason}", file=sys.stderr)
            failed += 1
    print(f"verified {verified} commands, {failed} failed, {skipped} other records skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
