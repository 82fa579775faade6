"""Shared by the Python compatibility programs: the records every client writes and how a
result line looks. Each program prints `CLIENT\t<name>\t<version>` once, then one
`RESULT\t<feature>\t<pass|fail|n/a>\t<detail>` per feature (tests/compat.rs reads them)."""
import sys
import time
import traceback

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 200  # records per codec topic: one or a few batches, so lookups land inside batches
PROBE = 111  # the record whose timestamp is looked up (inside a batch)
STEP_MS = 10


def client(name, version):
    print(f"CLIENT\t{name}\t{version}", flush=True)


def result(feature, ok, detail=""):
    state = ok if isinstance(ok, str) else ("pass" if ok else "fail")
    detail = " ".join(str(detail).split())[:300]
    print(f"RESULT\t{feature}\t{state}\t{detail}", flush=True)
    return state != "fail"


def base_ts():
    # A minute in the past: far enough for exact lookups, recent enough for retention.
    return int(time.time() * 1000) - 60_000


def record(i, t0):
    return (f"key-{i}".encode(), f"value-{i}".encode(), t0 + STEP_MS * i)


def check_consumed(got, t0, n=N):
    """got: list of (offset, key, value, timestamp) in consumption order."""
    if len(got) != n:
        return False, f"read {len(got)} of {n} records"
    for i, (off, k, v, ts) in enumerate(got):
        want_k, want_v, want_ts = record(i, t0)
        if (off, k, v, ts) != (i, want_k, want_v, want_ts):
            return False, f"record {i}: got {(off, k, v, ts)}"
    return True, f"{n} records in order, keys, values and timestamps exact"


def lookups(t0, n=N):
    """(query timestamp, expected (offset, timestamp) or None) pairs."""
    return [
        (t0 + STEP_MS * PROBE - 5, (PROBE, t0 + STEP_MS * PROBE)),
        (t0 + STEP_MS * PROBE, (PROBE, t0 + STEP_MS * PROBE)),
        (t0 - 1000, (0, t0)),
        (t0 + STEP_MS * (n - 1), (n - 1, t0 + STEP_MS * (n - 1))),
        (t0 + STEP_MS * n, None),
    ]


def guarded(feature, fn, *args):
    """Run one check; an exception is a failed feature, not a crashed program."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - report any client error as the check's result
        traceback.print_exc(file=sys.stderr)
        return result(feature, False, f"{type(e).__name__}: {e}")
