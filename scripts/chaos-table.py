#!/usr/bin/env python3
"""Render bench-results/chaos.jsonl (from `make chaos`) as the Markdown table
of docs/delivery-semantics.md. Usage: scripts/chaos-table.py [file]"""
import json, sys

path = sys.argv[1] if len(sys.argv) > 1 else "bench-results/chaos.jsonl"
rows = {}
for line in open(path):
    line = line.strip()
    if line:
        r = json.loads(line)
        rows[r["test"]] = r  # the last run of each test
order = ["crashes", "rebalances", "zombies", "graceful-shutdown", "postgres-outage", "kafka-outage", "watch-kills", "watch-big-file"]
cols = [("records_produced", "records"), ("invalid_records", "invalid"), ("sigkills", "SIGKILLs"),
        ("sigkills_inside_commit", "…inside a commit"), ("restarts", "restarts"),
        ("zombie_batches_fenced", "zombie batches fenced"),
        ("user_rows_differing", "user rows wrong"), ("org_rows_differing", "org rows wrong"),
        ("raw_records_lost", "raw lost"), ("raw_records_duplicated", "raw duplicated"),
        ("dead_letters_lost", "DLQ lost"), ("dead_letters_duplicated", "DLQ duplicated"),
        ("changelog_records", "changelog records"), ("changelog_keys_differing_from_view", "changelog keys wrong"),
        ("changelog_records_out_of_order", "changelog out of order"), ("changelog_commits_missing", "changelog commits missing"),
        ("enriched_records", "enriched records"), ("enriched_corrections", "…corrections"),
        ("enriched_events_missing", "enriched missing"), ("enriched_keys_differing_from_oracle", "enriched wrong"),
        ("enriched_records_duplicated", "enriched duplicated"),
        ("activity_records", "activity records"), ("activity_windows_differing_from_oracle", "windows wrong"),
        ("activity_topic_windows_differing_from_state", "activity topic ≠ state"),
        ("records_lost", "watch records lost"), ("records_duplicated", "watch records duplicated"),
        ("duration_seconds", "seconds")]
print("| test | " + " | ".join(c[1] for c in cols) + " |")
print("| --- |" + " ---: |" * len(cols))
for name in order + sorted(set(rows) - set(order)):
    if name in rows:
        r = rows[name]
        # A figure the test does not measure is "—", not 0.
        print(f"| {name} | " + " | ".join(f"{r[k]:,}" if k in r else "—" for k, _ in cols) + " |")
dates = sorted(r["date"] for r in rows.values())
if dates:
    print(f"\nRun between {dates[0]} and {dates[-1]} (UTC).")
