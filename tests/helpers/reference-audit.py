#!/usr/bin/env python3
"""Append audit_log rows to a reference-service SQLite database the way the
reference does (reference-service.md §2.10): entry_hash = sha256 of
json.dumps(data, separators=(",",":"), sort_keys=True) over the eight
hashed fields, timestamp as naive isoformat(), stored as SQLAlchemy's
"YYYY-MM-DD HH:MM:SS.ffffff".  Written independently of attestd's C code.

usage: reference-audit.py DB [--with-source-ip] < rows.tsv
rows: timestamp(YYYY-MM-DD HH:MM:SS.ffffff) TAB operator_cn TAB action TAB
      machine_id TAB prev_state TAB new_state TAB detail  ('-' = NULL)"""
import datetime, hashlib, json, sqlite3, sys

db = sqlite3.connect(sys.argv[1])
with_ip = "--with-source-ip" in sys.argv
if with_ip:
    db.execute("ALTER TABLE audit_log ADD COLUMN source_ip VARCHAR")
row = db.execute("SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
prev = row[0] if row else "0" * 64
for line in sys.stdin.read().splitlines():
    f = [None if v == "-" else v for v in line.split("\t")]
    ts = datetime.datetime.strptime(f[0], "%Y-%m-%d %H:%M:%S.%f")
    data = {"action": f[2], "detail": f[6], "machine_id": f[3], "new_state": f[5],
            "operator_cn": f[1], "prev_hash": prev, "prev_state": f[4],
            "timestamp": ts.replace(tzinfo=None).isoformat()}
    if with_ip:
        data["source_ip"] = "192.0.2.7"
    h = hashlib.sha256(json.dumps(data, separators=(",", ":"), sort_keys=True).encode()).hexdigest()
    cols = "timestamp, operator_cn, action, machine_id, prev_state, new_state, detail, prev_hash, entry_hash"
    vals = [f[0], f[1], f[2], f[3], f[4], f[5], f[6], prev, h]
    if with_ip:
        cols += ", source_ip"
        vals.append("192.0.2.7")
    db.execute("INSERT INTO audit_log (%s) VALUES (%s)" % (cols, ", ".join("?" * len(vals))), vals)
    prev = h
db.commit()
print(prev)
