"""make bench-claim: claim+complete throughput of sous's queue core against pgqueuer.

Both run on the same throwaway PostgreSQL server, in the same run, with the same shape of work:
N rows enqueued, then C concurrent consumers take batches of B and acknowledge each batch.
- sous: claim_ingredient_match_queue (the real claim function, through core.queue) then
  complete_rows fenced on attempt_count — two transactions per batch, as a worker does.
- pgqueuer: its own Queries.enqueue / Queries.dequeue / Queries.log_jobs (ack), each consumer on its
  own psycopg async connection; its QueueManager loop (heartbeats, polling sleeps) is left out so the
  comparison is queue core against queue core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pgqueuer
import psycopg
from pgqueuer.queries import EntrypointExecutionParameter, Queries
from pgqueuer.types import QueueEntrypoint, QueueManagerId

from core import migrate, queue
from core.db import create_engine, transaction
from core.resolution import Resolution
from devtools.services import PostgresServer


def _create_db(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def bench_sous(url: str, rows: int, batch: int, consumers: int) -> dict[str, float]:
    migrate.upgrade(url)
    engine = create_engine(url, pool_size=consumers + 1)
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingredient_match_queue (raw_name) "
            "SELECT 'ingredient ' || g FROM generate_series(1, %s) g",
            (rows,),
        )
        conn.execute("ANALYZE ingredient_match_queue")
    enqueue_s = time.perf_counter() - t0
    done = [0] * consumers
    result = Resolution("resolved", "flour", 100, "g", 0.9, "bench", None)

    def consumer(slot: int) -> None:
        while True:
            with transaction(engine) as conn:
                claimed = queue.claim_rows(conn, limit=batch, resolver=f"bench-{slot}", lease_seconds=60)
            if not claimed:
                return
            with transaction(engine) as conn:
                done[slot] += len(queue.complete_rows(conn, [(row, result) for row in claimed]))

    threads = [threading.Thread(target=consumer, args=(i,)) for i in range(consumers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    with psycopg.connect(url) as conn:
        resolved = conn.execute(
            "SELECT count(*) FROM ingredient_match_queue WHERE status = 'resolved'"
        ).fetchone()
    engine.dispose()
    assert resolved == (rows,), f"sous resolved {resolved} of {rows}"
    assert sum(done) == rows
    return {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed, "enqueue_s": enqueue_s}


async def _bench_pgqueuer(url: str, rows: int, batch: int, consumers: int) -> dict[str, float]:
    admin = await psycopg.AsyncConnection.connect(url, autocommit=True)
    queries = Queries.from_psycopg_connection(admin)
    await queries.install()
    payloads: list[bytes | None] = [json.dumps({"n": i}).encode() for i in range(rows)]
    t0 = time.perf_counter()
    for start in range(0, rows, 5000):  # its batch enqueue, in slices of 5,000
        part = payloads[start : start + 5000]
        await queries.enqueue(["bench"] * len(part), part, [0] * len(part))
    enqueue_s = time.perf_counter() - t0
    entrypoints = {QueueEntrypoint("bench"): EntrypointExecutionParameter(concurrency_limit=0)}
    done = [0] * consumers

    async def consumer(slot: int) -> None:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
        q = Queries.from_psycopg_connection(conn)
        qm_id = QueueManagerId(uuid.uuid4())
        while True:
            jobs = await q.dequeue(batch, entrypoints, qm_id, None, timedelta(seconds=60))
            if not jobs:
                break
            await q.log_jobs([(job, "successful", None) for job in jobs])
            done[slot] += len(jobs)
        await conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(consumer(i) for i in range(consumers)))
    elapsed = time.perf_counter() - t0
    await admin.close()
    assert sum(done) == rows, f"pgqueuer acknowledged {sum(done)} of {rows}"
    return {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed, "enqueue_s": enqueue_s}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument(
        "--database-url", help="an existing server to create databases on (default: throwaway)"
    )
    args = parser.parse_args()

    server = None
    admin_url = args.database_url
    if not admin_url:
        server = PostgresServer()
        admin_url = server.start()
    try:
        ours = bench_sous(
            _create_db(admin_url, f"bench_sous_{uuid.uuid4().hex[:6]}"), args.rows, args.batch, args.consumers
        )
        theirs = asyncio.run(
            _bench_pgqueuer(
                _create_db(admin_url, f"bench_pgq_{uuid.uuid4().hex[:6]}"),
                args.rows,
                args.batch,
                args.consumers,
            )
        )
    finally:
        if server:
            server.destroy()

    ratio = ours["rows_per_s"] / theirs["rows_per_s"]
    print(
        f"bench-claim  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {platform.node()}  "
        f"rows={args.rows} batch={args.batch} consumers={args.consumers}"
    )
    print(f"{'system':<22}{'claim+complete rows/s':>24}{'seconds':>10}{'enqueue s':>12}")
    print(f"{'sous':<22}{ours['rows_per_s']:>24.0f}{ours['seconds']:>10.2f}{ours['enqueue_s']:>12.2f}")
    print(
        f"{'pgqueuer ' + pgqueuer.__version__:<22}{theirs['rows_per_s']:>24.0f}{theirs['seconds']:>10.2f}"
        f"{theirs['enqueue_s']:>12.2f}"
    )
    print(f"sous / pgqueuer = {ratio:.2f}x   target: >= 5000 rows/s and >= pgqueuer")
    ok = ours["rows_per_s"] >= 5000 and ratio >= 1.0
    print("PASS" if ok else "BELOW TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
