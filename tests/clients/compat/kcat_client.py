"""Debian's kcat (librdkafka 2.0.2) against ringmq, driven through its command line: every
codec (produce, consume, offsets for a timestamp), a balanced consumer group (-G) that
commits and resumes, and the idempotent producer. kcat has no admin commands and no
transactions. It cannot set record timestamps, so records 0..110 and 111..199 are
produced by two runs 50 ms apart and the lookup asks for a timestamp between the two: it must
answer offset 111 (a batch boundary; the other clients probe inside a batch).
Usage: kcat_client.py BOOTSTRAP PREFIX"""
import subprocess
import sys
import time

from common import CODECS, N, PROBE, client, guarded, result

BOOT, PREFIX = sys.argv[1], sys.argv[2]


def kcat(*args, stdin=""):
    cmd = ["kcat", "-b", BOOT, "-X", "broker.address.family=v4", *args]
    done = subprocess.run(cmd, input=stdin.encode(), capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr.decode()[-300:]}")
    return done.stdout.decode()


def lines(n=N, start=0):
    return "".join(f"key-{i}:value-{i}\n" for i in range(start, start + n))


def produce(topic, *extra):
    for start, n in [(0, PROBE), (PROBE, N - PROBE)]:
        kcat("-P", "-t", topic, "-p", "0", "-K", ":", "-X", "acks=all", "-X", "linger.ms=20",
             *extra, stdin=lines(n, start))
        time.sleep(0.05)


def consume(topic):
    out = kcat("-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%o %T %k %s\\n")
    return [tuple(line.split(" ")) for line in out.splitlines()]


def check_consumed(got):
    if len(got) != N:
        return False, f"read {len(got)} of {N} records"
    for i, (off, _ts, k, v) in enumerate(got):
        if (off, k, v) != (str(i), f"key-{i}", f"value-{i}"):
            return False, f"record {i}: got {(off, k, v)}"
    return True, f"{N} records in order, keys and values exact (offsets dense from 0)"


def codec_check(codec):
    topic = f"{PREFIX}-{codec}"
    produce(topic, "-z", codec)
    got = consume(topic)
    ok, why = check_consumed(got)
    result(f"produce.{codec}", ok, f"kcat -P -z {codec} exited 0; " + ("all read back" if ok else why))
    result(f"consume.{codec}", ok, why)
    ts = int(got[PROBE - 1][1]) + 1
    out = kcat("-Q", "-t", f"{topic}:0:{ts}")
    found = int(out.split("offset")[1].split()[0]) if "offset" in out else None
    return result(f"offsets_for_time.{codec}", found == PROBE,
                  f"1 ms after record {PROBE - 1}: want offset {PROBE}, got {found}")


def group_check():
    topic, group = f"{PREFIX}-group", f"{PREFIX}-g"
    produce(topic)
    fmt = "%o\\n"
    first = kcat("-G", group, topic, "-c", "50", "-q", "-f", fmt, "-X", "auto.offset.reset=earliest").split()
    resumed = kcat("-G", group, topic, "-c", "1", "-q", "-f", fmt, "-X", "auto.offset.reset=earliest").split()
    ok = first[:1] == ["0"] and len(first) == 50 and resumed == ["50"]
    return result("group.commit_resume", ok,
                  f"first member read {first[:1]}..{first[-1:]} ({len(first)}); next member resumed at {resumed}")


def idempotent_check():
    topic = f"{PREFIX}-idem"
    produce(topic, "-X", "enable.idempotence=true")
    ok, why = check_consumed(consume(topic))
    return result("idempotent", ok, f"enable.idempotence=true: {why}")


def main():
    out = subprocess.run(["kcat", "-V"], capture_output=True).stdout.decode()
    line = next(l for l in out.splitlines() if l.startswith("Version "))
    lib = line.split("librdkafka ")[1].split()[0]
    client("kcat", f"{line.split()[1]} (librdkafka {lib})")
    result("admin.create_delete", "n/a", "kcat has no admin commands (topics are auto-created)")
    for codec in CODECS:
        guarded(f"offsets_for_time.{codec}", codec_check, codec)
    guarded("group.commit_resume", group_check)
    guarded("idempotent", idempotent_check)
    result("transactions.clear_error", "n/a", "kcat has no transactional producer")


main()
