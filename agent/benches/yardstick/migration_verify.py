#!/usr/bin/env python3
"""The yardstick for `gatekeeper check phase-2`: what the seeds'
`scripts/nats/migration-verify.js 2` does (seed 004: "checks stream
existence, subjects, consumers; pass/fail report for go/no-go decisions"),
written the way a team would write it by hand with nats-py and psycopg, plus
the PostgreSQL checks of the phase-2 checklist (seed 003: "PostgreSQL
responsive (ping < 50ms)", "connection pool < 80% utilization").

    migration_verify.py NATS_URL DATABASE_URL

Exit 0 go, 1 no-go. Used by `cargo bench -p gatekeeper --bench check_vs_script`,
which installs nothing: `pip install nats-py psycopg[binary]` (scripts/setup
puts them in .tools/yardstick).
"""
import asyncio
import sys
import time

import nats
import psycopg

CORE = {"name": "AA_CORE_HOT", "subjects": ["athlete-ally.>", "sleep.*"],
        "max_age_s": 48 * 3600, "replicas": 1, "storage": "file"}
CONSUMER = {"stream": "AA_CORE_HOT", "name": "normalize-hrv-durable",
            "filter": "athlete-ally.hrv.raw-received", "ack_policy": "explicit",
            "deliver_policy": "all", "max_deliver": 5, "ack_wait_s": 60,
            "max_ack_pending": 1000}


def val(x):
    """nats-py gives some config fields as enums, some as plain strings."""
    return getattr(x, "value", x)


def overlaps(a, b):
    """NATS subject overlap: token by token, `*` matches one, `>` the rest."""
    ta, tb = a.split("."), b.split(".")
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != y and x != "*" and y != "*":
            return False
    return True


async def nats_checks(url, report):
    nc = await nats.connect(url, connect_timeout=5)
    js = nc.jetstream()
    try:
        info = await js.stream_info(CORE["name"])
        c = info.config
        report("core-stream-ready",
               sorted(c.subjects) == sorted(CORE["subjects"])
               and int(c.max_age) == CORE["max_age_s"]
               and c.num_replicas == CORE["replicas"]
               and val(c.storage) == CORE["storage"],
               f"subjects {c.subjects}, max_age {c.max_age}s")
    except nats.js.errors.NotFoundError:
        report("core-stream-ready", False, "AA_CORE_HOT does not exist")
    try:
        ci = await js.consumer_info(CONSUMER["stream"], CONSUMER["name"])
        c = ci.config
        filters = c.filter_subjects or ([c.filter_subject] if c.filter_subject else [])
        report("hrv-consumer-ready",
               filters == [CONSUMER["filter"]]
               and val(c.ack_policy) == CONSUMER["ack_policy"]
               and val(c.deliver_policy) == CONSUMER["deliver_policy"]
               and c.max_deliver == CONSUMER["max_deliver"]
               and int(c.ack_wait) == CONSUMER["ack_wait_s"]
               and c.max_ack_pending == CONSUMER["max_ack_pending"],
               f"filter {filters}")
    except nats.js.errors.NotFoundError:
        report("hrv-consumer-ready", False, "normalize-hrv-durable does not exist")
    streams = await js.streams_info()
    claimed = [(s.config.name, subj) for s in streams for subj in (s.config.subjects or [])]
    clash = [(a, b) for i, a in enumerate(claimed) for b in claimed[i + 1:]
             if a[0] != b[0] and overlaps(a[1], b[1])]
    report("subjects-no-overlap", not clash, f"{len(clash)} overlapping pairs")
    await nc.close()


def postgres_checks(url, report):
    start = time.monotonic()
    with psycopg.connect(url, connect_timeout=5) as conn:
        conn.execute("SELECT 1").fetchone()
        ping_ms = (time.monotonic() - start) * 1000
        used = conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0]
        limit = int(conn.execute("SHOW max_connections").fetchone()[0])
    report("database-ping", ping_ms < 50, f"{ping_ms:.1f} ms")
    report("database-connections", used * 100 / limit < 80, f"{used}/{limit}")


def main():
    nats_url, database_url = sys.argv[1], sys.argv[2]
    failed = []

    def report(check, ok, detail):
        print(f"{'PASS' if ok else 'FAIL'} {check}: {detail}")
        if not ok:
            failed.append(check)

    asyncio.run(nats_checks(nats_url, report))
    postgres_checks(database_url, report)
    print("GO" if not failed else f"NO-GO: {', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
