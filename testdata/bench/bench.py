#!/usr/bin/env python3
"""make bench: ietd against tgtd on the same machine, over loopback.

Starts bin/ietd and tgtd on equal sparse files (127.0.0.1 only), runs each
workload on both daemons alternately (A B, then B A, ...) for several rounds,
and prints per workload the median, the ratio ietd/tgt, the daemon's CPU
(user+sys from /proc/PID/stat) per GB moved and its peak RSS (VmHWM, reset
before every run through /proc/PID/clear_refs, plus VmRSS sampled every
50 ms). Writes the whole result as JSON.

It is a benchmark, not a test: it exits non-zero only when a daemon cannot be
started (or the harness itself breaks), never because of a number.

The single-session workloads are the ones of ../shared/tools/perfpair (same
clients, same sizes, same counts), so numbers compare with the issue's table.

Environment:
  BENCH_OUT      JSON result path (default /tmp/ietd-bench.json)
  BENCH_QUICK=1  one round, fewer and shorter workloads
  BENCH_ROUNDS   rounds per workload (default 3, quick 1)
  BENCH_ONLY     regex: run only the workloads whose name matches
  BENCH_DAEMONS  comma list out of ietd,tgt (default both; ratios need both)
  BENCH_SIZE     LUN size (default 100M)
  BENCH_PORT     first TCP port to try (default 3360)
  BENCH_PARAMS   "tuned" (default: both daemons get the same larger limits,
                 see TUNED) or "default" (each daemon's own defaults)
  BENCH_KEEP=1   keep the work directory (logs, configs)
  BENCH_DIGEST_ROUNDS  rounds of the paired digest-cost measurement
                 (default 5, quick 0; digests off and on back to back)
  The loopback ceiling (testdata/bench/tcpceiling: one TCP stream with no
  iSCSI, also with a pread before each send or a pwrite after each
  receive) is measured after the workloads (BENCH_ONLY must match
  "ceiling" when set) and each daemon's 1M QD8 read/write is shown as a
  share of it.
  BENCH_SOAK=S   after the workloads, a soak of S seconds per daemon in
                 BENCH_SOAK_DAEMONS (default ietd): 8 sessions reading and 8
                 writing, each QD32 1M (iscsiload), VmRSS sampled every second;
                 reports the series, the peak and the RSS slope over the
                 second half (KiB/min)
  IETD_BIN       ietd binary (default <repo>/bin/ietd)
  BENCH_IETD=transport  use testdata/bench/transportd instead of bin/ietd:
                 the real transport over a minimal pread/pwrite device (to
                 measure target/iscsi alone; always serves pprof on IETD_PPROF)
Anything else in the environment (e.g. IETD_PPROF) is passed to ietd.
"""
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IQN = "iqn.2001-04.com.example:bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
CLIENT_TIMEOUT = 180  # seconds, any single client process

# Session limits both daemons get in "tuned" mode (IET key names; tgt takes
# the same RFC 7143 key names through tgtadm --op update).
TUNED = {
    "MaxRecvDataSegmentLength": "262144",
    "MaxBurstLength": "1048576",
    "FirstBurstLength": "262144",
    "MaxXmitDataSegmentLength": "262144",
}
DIGESTS = {"HeaderDigest": "CRC32C,None", "DataDigest": "CRC32C,None"}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port(start):
    for p in range(start, start + 200):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port from %d" % start)


def wait_port(port, pid, secs=10):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if not alive(pid):
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(proc, secs=5):
    """Stop a Popen we started: SIGTERM, wait, then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=secs)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=secs)
    except ProcessLookupError:
        pass


def cpu_seconds(pid):
    """user+sys of the whole thread group (the leader's stat sums its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is field 3 (state); utime is field 14, stime field 15.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def reset_hwm(pid):
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class RSSSampler:
    def __init__(self, pid, every=0.05):
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = status_kib(self.pid, "VmRSS")
            if v is not None and v > self.peak:
                self.peak = v
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(2)


class Daemon:
    name = "?"
    proc = None
    port = 0
    lun = 0

    def url(self, query=""):
        return "iscsi://127.0.0.1:%d/%s/%d%s" % (self.port, IQN, self.lun, query)

    def image_opts(self, initiator, header_digest=None):
        o = "driver=iscsi,transport=tcp,portal=127.0.0.1:%d,target=%s,lun=%d,initiator-name=%s" % (
            self.port, IQN, self.lun, initiator)
        if header_digest:
            o += ",header-digest=" + header_digest
        return o

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        stop_pid(self.proc)


class Ietd(Daemon):
    name = "ietd"
    lun = 0
    wt_lun = 1  # write-through (IOMode=wt)

    def __init__(self, work, size, port, params, binary):
        self.work, self.port, self.binary = work, port, binary
        self.img = os.path.join(work, "ietd-lun0.img")
        self.wt_img = os.path.join(work, "ietd-lun1-wt.img")
        for img in (self.img, self.wt_img):
            with open(img, "wb") as f:
                f.truncate(size)
        self.conf = os.path.join(work, "ietd.conf")
        lines = ["Target " + IQN,
                 "\tLun 0 Path=%s,Type=fileio,IOMode=wb" % self.img,
                 # IET's default IOMode: every write durable before its status.
                 "\tLun 1 Path=%s,Type=fileio,IOMode=wt" % self.wt_img,
                 "\tQueuedCommands 128"]
        for k, v in params.items():
            lines.append("\t%s %s" % (k, v))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise RuntimeError("no ietd binary at %s (make build; or BENCH_IETD=transport to bench the "
                               "transport alone, or BENCH_DAEMONS=tgt)" % self.binary)
        self.log = open(os.path.join(self.work, "ietd.log"), "wb")
        self.proc = subprocess.Popen(
            [self.binary, "-f", "-c", self.conf, "-a", "127.0.0.1", "-p", str(self.port),
             "--pid-file", os.path.join(self.work, "ietd.pid"),
             "--admin-socket", os.path.join(self.work, "ietadm.sock"),
             "--acl-dir", self.work, "--state-dir", os.path.join(self.work, "state"),
             "--proc-dir", os.path.join(self.work, "proc")],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_port(self.port, self.proc.pid):
            raise RuntimeError("ietd did not start listening on 127.0.0.1:%d (log %s)" % (self.port, self.log.name))


class Tgtd(Daemon):
    name = "tgt"
    lun = 1  # tgt's LUN 0 is its controller
    wt_lun = 2  # write-through (--bsoflags sync: opened O_SYNC)

    def __init__(self, work, size, port, params):
        self.work, self.port, self.params = work, port, params
        self.img = os.path.join(work, "tgt-lun1.img")
        self.wt_img = os.path.join(work, "tgt-lun2-wt.img")
        for img in (self.img, self.wt_img):
            with open(img, "wb") as f:
                f.truncate(size)
        # tgtd's management socket is /var/run/tgtd/socket.<control port>:
        # pick one nobody uses so concurrent tgtd instances don't collide.
        self.ctl = None
        for c in range(2000 + os.getpid() % 5000, 2000 + os.getpid() % 5000 + 500):
            if not os.path.exists("/var/run/tgtd/socket.%d" % c) and not os.path.exists("/var/run/tgtd/socket.%d.lock" % c):
                self.ctl = c
                break
        if self.ctl is None:
            raise RuntimeError("no free tgtd control port")

    def adm(self, *args):
        cmd = ["tgtadm", "-C", str(self.ctl), "--lld", "iscsi"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(cmd), (p.stdout + p.stderr).strip()))

    def start(self):
        self.log = open(os.path.join(self.work, "tgtd.log"), "wb")
        self.proc = subprocess.Popen(
            ["tgtd", "-f", "-C", str(self.ctl), "--iscsi", "portal=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_port(self.port, self.proc.pid):
            raise RuntimeError("tgtd did not start listening on 127.0.0.1:%d (log %s)" % (self.port, self.log.name))
        self.adm("--op", "new", "--mode", "target", "--tid", "1", "-T", IQN)
        self.adm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", self.img)
        self.adm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "2", "-b", self.wt_img,
                 "--bsoflags", "sync")
        for k, v in self.params.items():
            self.adm("--op", "update", "--mode", "target", "--tid", "1", "-n", k, "-v", v)
        self.adm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")

    def stop(self):
        # tgtd ignores SIGTERM while it has targets: ask it to exit first.
        if self.proc is not None and self.proc.poll() is None:
            for args in (("--op", "delete", "--force", "--mode", "target", "--tid", "1"),
                         ("--op", "delete", "--mode", "system")):
                try:
                    self.adm(*args)
                except (RuntimeError, subprocess.TimeoutExpired):
                    pass
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        Daemon.stop(self)
        for suffix in ("", ".lock"):
            try:
                os.unlink("/var/run/tgtd/socket.%d%s" % (self.ctl, suffix))
            except OSError:
                pass


# ---------------------------------------------------------------- clients

SIZES = {"4k": 4096, "64k": 65536, "1M": 1 << 20}


def run_qemu_bench(target, size, count, depth, write, initiator="iqn.2024-01.org.ietgo.bench:qemu",
                   header_digest=None):
    """-> (ops/s, bytes moved, seconds) or None."""
    cmd = ["qemu-img", "bench", "--image-opts", "-n", "-t", "none", "-d", str(depth),
           "-s", size, "-c", str(count)]
    if write:
        cmd.append("-w")
    cmd.append(target.image_opts(initiator, header_digest))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    m = re.search(r"Run completed in ([0-9.]+) seconds", p.stdout)
    if p.returncode != 0 or not m:
        log("  qemu-img failed:", (p.stdout + p.stderr).strip()[-300:])
        return None
    secs = float(m.group(1))
    nbytes = SIZES[size] * count
    return count / secs, nbytes, secs


def start_iscsi_perf(target, blocks, depth, rnd, initiator, query=""):
    cmd = ["iscsi-perf", "-i", initiator, "-m", str(depth), "-b", str(blocks)]
    if rnd:
        cmd.append("-r")
    cmd.append(target.url(query))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)


def finish_iscsi_perf(p):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    try:
        out = p.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        p.kill()
        out = p.communicate()[0]
    avg = re.findall(r"iops average (\d+) \((\d+) MB/s\)", out)
    if not avg:
        log("  iscsi-perf failed:", out.strip()[-300:])
        return None
    return float(avg[-1][0])


def run_iscsi_perf(target, blocks, depth, secs, rnd, sessions=1, query=""):
    """-> (ops/s summed over sessions, bytes moved, seconds) or None.
    Blocks are 512 bytes on both daemons (checked at start-up)."""
    procs = [start_iscsi_perf(target, blocks, depth, rnd,
                              "iqn.2024-01.org.ietgo.bench:perf%d" % i, query) for i in range(sessions)]
    t0 = time.monotonic()
    time.sleep(secs)
    wall = time.monotonic() - t0
    iops = [finish_iscsi_perf(p) for p in procs]
    if any(v is None for v in iops):
        return None
    total = sum(iops)
    return total, total * blocks * 512 * wall, wall


def run_parallel_qemu(target, size, count, depth, write, sessions):
    """sessions qemu-img bench processes at once -> (ops/s total, bytes, wall secs)."""
    out = [None] * sessions

    def one(i):
        out[i] = run_qemu_bench(target, size, count, depth, write,
                                initiator="iqn.2024-01.org.ietgo.bench:qemu%d" % i)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(sessions)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join(CLIENT_TIMEOUT + 10)
    wall = time.monotonic() - t0
    if any(v is None for v in out):
        return None
    nbytes = sum(v[1] for v in out)
    return sessions * count / wall, nbytes, wall


LOADGEN = None  # path of the Go initiator (testdata/bench/iscsiload), built at start-up


def run_loadgen(target, rw, bs, depth, secs, sessions, digests, lun=None):
    if not LOADGEN:
        return None
    lun = target.lun if lun is None else lun
    cmd = [LOADGEN, "-addr", "127.0.0.1:%d" % target.port, "-target", IQN, "-lun", str(lun),
           "-rw", rw, "-bs", str(bs), "-qd", str(depth), "-sessions", str(sessions),
           "-duration", "%gs" % secs, "-digests=%s" % ("true" if digests else "false")]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    except subprocess.TimeoutExpired:
        log("  iscsiload timed out")
        return None
    try:
        r = json.loads(p.stdout)
    except ValueError:
        r = None
    if p.returncode != 0 or not r:
        log("  iscsiload failed:", (p.stdout + p.stderr).strip()[-400:])
        return None
    if digests and not (r.get("header_digest") and r.get("data_digest")):
        log("  iscsiload: digests not negotiated by", target.name)
        return None
    return r["iops"], r["bytes"], r["seconds"]


def W(name, unit, fn, quick=False):
    return {"name": name, "unit": unit, "fn": fn, "quick": quick}


def workloads(quick):
    ms_secs = 4 if quick else 8
    d_secs = 3 if quick else 5
    wl = [
        # perfpair's set
        W("4k-write-qd32 (qemu-img)", "IOPS", lambda t: run_qemu_bench(t, "4k", 60000, 32, True), True),
        W("4k-read-qd32 (qemu-img)", "IOPS", lambda t: run_qemu_bench(t, "4k", 60000, 32, False), True),
        W("4k-randread-qd32 (iscsi-perf)", "IOPS", lambda t: run_iscsi_perf(t, 8, 32, 5, True)),
        W("1M-write-qd8 (qemu-img)", "MB/s", lambda t: run_qemu_bench(t, "1M", 1500, 8, True), True),
        W("1M-read-qd8 (qemu-img)", "MB/s", lambda t: run_qemu_bench(t, "1M", 1500, 8, False), True),
        W("1M-read-qd16 (iscsi-perf)", "MB/s", lambda t: run_iscsi_perf(t, 2048, 16, 5, False)),
        # multi-session: 16 sessions, each QD32 1M
        W("16x 1M-read-qd32 (iscsi-perf)", "MB/s",
          lambda t: run_iscsi_perf(t, 2048, 32, ms_secs, False, sessions=16), True),
        W("16x 1M-write-qd32 (qemu-img)", "MB/s",
          lambda t: run_parallel_qemu(t, "1M", 60 if quick else 100, 32, True, 16)),
        # digests: libiscsi (1.19) can only ask for HeaderDigest; DataDigest
        # it always offers None. The Go initiator does both.
        W("1M-read-qd8 hdigest (qemu-img)", "MB/s",
          lambda t: run_qemu_bench(t, "1M", 1500, 8, False, header_digest="crc32c")),
        W("1M-read-qd16 nodigest (iscsiload)", "MB/s",
          lambda t: run_loadgen(t, "read", 1 << 20, 16, d_secs, 1, False), True),
        W("1M-read-qd16 hd+dd (iscsiload)", "MB/s",
          lambda t: run_loadgen(t, "read", 1 << 20, 16, d_secs, 1, True), True),
        W("1M-write-qd8 nodigest (iscsiload)", "MB/s",
          lambda t: run_loadgen(t, "write", 1 << 20, 8, d_secs, 1, False)),
        W("1M-write-qd8 hd+dd (iscsiload)", "MB/s",
          lambda t: run_loadgen(t, "write", 1 << 20, 8, d_secs, 1, True)),
        # write-through LUNs (IET's default IOMode; tgt opened O_SYNC)
        W("4k-write-qd32 write-through (iscsiload)", "IOPS",
          lambda t: run_loadgen(t, "write", 4096, 32, d_secs, 1, False, lun=t.wt_lun)),
        W("4k-randwrite-qd32 write-through (iscsiload)", "IOPS",
          lambda t: run_loadgen(t, "randwrite", 4096, 32, d_secs, 1, False, lun=t.wt_lun)),
    ]
    if quick:
        wl = [w for w in wl if w["quick"]]
    return wl


def measure(daemon, w):
    """Run one workload once against one daemon with CPU and memory accounting."""
    pid = daemon.pid
    reset_hwm(pid)
    c0 = cpu_seconds(pid)
    with RSSSampler(pid) as s:
        r = w["fn"](daemon)
    c1 = cpu_seconds(pid)
    hwm = status_kib(pid, "VmHWM")
    rec = {"value": None, "bytes": None, "seconds": None, "cpu_s": None, "cpu_s_per_gb": None,
           "vmhwm_kib": hwm, "rss_sampled_kib": s.peak or None, "alive": alive(pid)}
    if c0 is not None and c1 is not None:
        rec["cpu_s"] = round(c1 - c0, 3)
    if r is not None:
        ops, nbytes, secs = r
        rec.update(value=ops if w["unit"] == "IOPS" else nbytes / secs / 1e6, bytes=int(nbytes),
                   seconds=round(secs, 3))
        if rec["cpu_s"] is not None and nbytes > 0:
            rec["cpu_s_per_gb"] = round(rec["cpu_s"] / (nbytes / 1e9), 3)
    return rec


def soak(daemon, secs):
    """16 sessions (8 read, 8 write) at QD32 1M for secs; RSS every second."""
    if not LOADGEN:
        return {"error": "iscsiload missing"}
    pid = daemon.pid
    reset_hwm(pid)
    c0 = cpu_seconds(pid)
    procs = []
    for rw in ("read", "write"):
        cmd = [LOADGEN, "-addr", "127.0.0.1:%d" % daemon.port, "-target", IQN, "-lun", str(daemon.lun),
               "-rw", rw, "-bs", str(1 << 20), "-qd", "32", "-sessions", "8", "-duration", "%ds" % secs,
               "-initiator", "iqn.2024-01.org.ietgo.bench:soak-%s" % rw]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    series = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs + 30 and any(p.poll() is None for p in procs):
        series.append([round(time.monotonic() - t0, 1), status_kib(pid, "VmRSS")])
        time.sleep(1)
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        try:
            outs.append(json.loads(out))
        except ValueError:
            outs.append({"error": (out + err).strip()[-300:]})
    nbytes = sum(o.get("bytes", 0) for o in outs)
    c1 = cpu_seconds(pid)
    half = [(t, v) for t, v in series[len(series) // 2:] if v is not None]
    slope = None
    if len(half) >= 3:
        mt = sum(t for t, _ in half) / len(half)
        mv = sum(v for _, v in half) / len(half)
        den = sum((t - mt) ** 2 for t, _ in half)
        if den > 0:
            slope = sum((t - mt) * (v - mv) for t, v in half) / den * 60
    return {"seconds": secs, "clients": outs, "mb_per_s": nbytes / secs / 1e6 if secs else None,
            "cpu_s_per_gb": (c1 - c0) / (nbytes / 1e9) if nbytes and c0 is not None and c1 is not None else None,
            "vmhwm_kib": status_kib(pid, "VmHWM"), "rss_series_kib": series,
            "rss_slope_kib_per_min_second_half": slope, "alive": alive(pid)}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, spec, none="-"):
    return none if v is None else spec % v


def go_build(work, name):
    """Build ./testdata/bench/<name> into work; -> path or None."""
    out = os.path.join(work, name)
    go = shutil.which("go") or "/usr/local/go/bin/go"
    try:
        p = subprocess.run([go, "build", "-o", out, "./testdata/bench/" + name], cwd=TOP,
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        log("warning: cannot build %s: %s" % (name, e))
        return None
    if p.returncode != 0:
        log("warning: cannot build %s: %s" % (name, p.stderr.strip()[-400:]))
        return None
    return out


def measure_ceiling(work, size, rounds, secs):
    """What one loopback TCP stream moves without iSCSI, per tcpceiling mode
    (stream; read = pread then send, write = receive then pwrite, on a file
    of the LUN's size in the work directory): median MB/s and CPU s/GB of
    both ends over rounds. -> {mode: {...}} or None when it cannot build."""
    tool = go_build(work, "tcpceiling")
    if not tool:
        return None
    path = os.path.join(work, "ceiling.img")
    out = {}
    for mode in ("stream", "read", "write"):
        runs = []
        for _ in range(rounds):
            try:
                p = subprocess.run([tool, "-mode", mode, "-file", path, "-size", str(size // (1 << 20) * (1 << 20)),
                                    "-duration", "%ds" % secs], capture_output=True, text=True,
                                   timeout=CLIENT_TIMEOUT)
                r = json.loads(p.stdout) if p.returncode == 0 else None
            except (OSError, subprocess.TimeoutExpired, ValueError):
                r = None
            if r:
                runs.append(r)
            else:
                log("  tcpceiling %s failed" % mode)
        if runs:
            out[mode] = {"mbps": med([r["mbps"] for r in runs]),
                         "cpu_s_per_gb": med([r["cpu_s_per_gb"] for r in runs]),
                         "runs": [round(r["mbps"]) for r in runs]}
            log("  ceiling %-6s %s MB/s" % (mode, out[mode]["runs"]))
    try:
        os.unlink(path)
    except OSError:
        pass
    return out or None


def build_loadgen(work):
    global LOADGEN
    LOADGEN = go_build(work, "iscsiload")
    if not LOADGEN:
        log("warning: iscsiload missing: data-digest workloads are skipped")


def tool_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def dpkg_version(pkg):
    return tool_version(["dpkg-query", "-W", "-f", "${Version}\n", pkg])


def main():
    # timeout(1) and Ctrl-C: unwind through the finally below so daemons stop.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    rounds = int(os.environ.get("BENCH_ROUNDS", "1" if quick else "3"))
    only = os.environ.get("BENCH_ONLY", "")
    out_path = os.environ.get("BENCH_OUT", "/tmp/ietd-bench.json")
    names = [n.strip() for n in os.environ.get("BENCH_DAEMONS", "ietd,tgt").split(",") if n.strip()]
    size_s = os.environ.get("BENCH_SIZE", "100M")
    size = int(size_s[:-1]) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[size_s[-1]] if size_s[-1] in "KMG" else int(size_s)
    mode = os.environ.get("BENCH_PARAMS", "tuned")
    params = dict(TUNED) if mode == "tuned" else {}
    params.update(DIGESTS)  # offered, not forced: digests are on only where the initiator asks
    keep = os.environ.get("BENCH_KEEP", "") not in ("", "0")

    work = tempfile.mkdtemp(prefix="ietd-bench.")
    daemons = []
    ietd_binary = None
    rc = 0
    try:
        build_loadgen(work)
        port = int(os.environ.get("BENCH_PORT", "3360"))
        for n in names:
            port = free_port(port)
            if n == "ietd":
                binary = os.environ.get("IETD_BIN", os.path.join(TOP, "bin", "ietd"))
                if os.environ.get("BENCH_IETD") == "transport":
                    binary = go_build(work, "transportd")
                    if not binary:
                        raise RuntimeError("cannot build testdata/bench/transportd")
                ietd_binary = binary
                d = Ietd(work, size, port, params, binary)
            elif n == "tgt":
                d = Tgtd(work, size, port, {k: v for k, v in params.items()})
            else:
                raise RuntimeError("unknown daemon %r (want ietd or tgt)" % n)
            port += 1
            daemons.append(d)
            d.start()
            log("%s: pid %d on 127.0.0.1:%d (%s)" % (d.name, d.pid, d.port, d.url()))
        idle = {d.name: {"rss_kib": status_kib(d.pid, "VmRSS"), "threads": None} for d in daemons}

        result = {
            "schema": 1,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "quick": quick, "rounds": rounds, "lun_bytes": size, "params_mode": mode, "params": params,
            "machine": {"nproc": os.cpu_count(), "kernel": os.uname().release,
                        "tgt": dpkg_version("tgt"), "qemu-utils": dpkg_version("qemu-utils"),
                        "libiscsi": dpkg_version("libiscsi-bin"),
                        "ietd_commit": tool_version(["git", "-C", TOP, "rev-parse", "--short", "HEAD"]),
                        "ietd_binary": ietd_binary},
            "daemons": {d.name: {"port": d.port, "url": d.url(), "idle_rss_kib": idle[d.name]["rss_kib"]} for d in daemons},
            "workloads": [],
        }
        base = "tgt"
        hdr = "%-36s %-6s" % ("workload", "unit")
        for d in daemons:
            hdr += " | %-9s %8s %8s" % (d.name + " med", "CPU s/GB", "RSS MiB")
        if len(daemons) == 2:
            hdr += " | ietd/tgt"
        print(hdr, flush=True)
        print("-" * len(hdr), flush=True)
        for w in workloads(quick):
            if only and not re.search(only, w["name"]):
                continue
            runs = {d.name: [] for d in daemons}
            for r in range(rounds):
                order = daemons if r % 2 == 0 else list(reversed(daemons))
                for d in order:
                    if not alive(d.pid):
                        raise RuntimeError("%s (pid %d) died; log %s" % (d.name, d.pid, d.log.name))
                    rec = measure(d, w)
                    rec["round"] = r
                    runs[d.name].append(rec)
                    log("  %-36s %-5s round %d: %s %s, cpu %s s/GB, hwm %s KiB" % (
                        w["name"], d.name, r, fmt(rec["value"], "%.0f", "FAILED"), w["unit"],
                        fmt(rec["cpu_s_per_gb"], "%.2f"), rec["vmhwm_kib"]))
            entry = {"name": w["name"], "unit": w["unit"], "results": {}}
            line = "%-36s %-6s" % (w["name"], w["unit"])
            for d in daemons:
                rs = runs[d.name]
                peak = max([x for rec in rs for x in (rec["vmhwm_kib"], rec["rss_sampled_kib"]) if x] or [0]) or None
                summary = {"median": med([x["value"] for x in rs]),
                           "cpu_s_per_gb": med([x["cpu_s_per_gb"] for x in rs]),
                           "peak_rss_kib": peak, "runs": rs}
                entry["results"][d.name] = summary
                line += " | %9s %8s %8s" % (fmt(summary["median"], "%.0f", "FAILED"),
                                            fmt(summary["cpu_s_per_gb"], "%.2f"),
                                            fmt(peak and peak / 1024, "%.1f"))
            if "ietd" in runs and base in runs:
                a, b = entry["results"]["ietd"], entry["results"][base]
                entry["ratio"] = a["median"] / b["median"] if a["median"] and b["median"] else None
                entry["cpu_ratio"] = (a["cpu_s_per_gb"] / b["cpu_s_per_gb"]
                                      if a["cpu_s_per_gb"] and b["cpu_s_per_gb"] else None)
                line += " | %s" % fmt(entry["ratio"], "x%.2f", "n/a")
            print(line, flush=True)
            result["workloads"].append(entry)

        if not only or re.search(only, "ceiling"):
            ceiling = measure_ceiling(work, size, 1 if quick else rounds, 2 if quick else 3)
            if ceiling:
                result["ceiling"] = ceiling
                print("\nloopback ceiling without iSCSI (testdata/bench/tcpceiling, one TCP stream, "
                      "median MB/s): " + ", ".join("%s %s" % (m, fmt(c["mbps"], "%.0f")) for m, c in ceiling.items()))
                for d in daemons:
                    share = []
                    for rw, wname in (("read", "1M-read-qd8 (qemu-img)"), ("write", "1M-write-qd8 (qemu-img)")):
                        for e in result["workloads"]:
                            v = e["results"][d.name]["median"] if e["name"] == wname else None
                            if v and ceiling.get(rw, {}).get("mbps"):
                                share.append("%s %.0f%%" % (wname, 100 * v / ceiling[rw]["mbps"]))
                    if share:
                        print("%s as a share of that ceiling: %s" % (d.name, ", ".join(share)), flush=True)
        # Digest cost at 1M, from the same client with digests off and on.
        costs = {}
        for d in daemons:
            for rw in ("read", "write"):
                off = on = None
                for e in result["workloads"]:
                    if e["name"].startswith("1M-%s" % rw) and "(iscsiload)" in e["name"]:
                        v = e["results"][d.name]["median"]
                        if "nodigest" in e["name"]:
                            off = v
                        elif "hd+dd" in e["name"]:
                            on = v
                if off and on:
                    costs.setdefault(d.name, {})[rw] = round(1 - on / off, 4)
        if costs:
            result["digest_cost"] = costs
            print("\ndigest cost at 1M (1 - on/off, HeaderDigest+DataDigest CRC32C): " + ", ".join(
                "%s %s %.1f%%" % (n, rw, c * 100) for n, v in costs.items() for rw, c in v.items()))
        # Digest cost, paired: the medians above come from runs minutes
        # apart, and on a shared 2-core box the machine's speed drifts more
        # than digests cost. Here every round runs off and on back to back
        # (order alternating) and the cost is the median of the per-round
        # ratios.
        pair_rounds = int(os.environ.get("BENCH_DIGEST_ROUNDS", "0" if quick else "5") or 0)
        if pair_rounds > 0 and LOADGEN and (not only or re.search(only, "digest-paired")):
            paired = {}
            for d in daemons:
                for rw, depth in (("read", 16), ("write", 8)):
                    pair = [W("1M-%s-qd%d %s (iscsiload)" % (rw, depth, tag), "MB/s",
                              (lambda dg: lambda t: run_loadgen(t, rw, 1 << 20, depth, 5, 1, dg))(dg))
                            for tag, dg in (("nodigest", False), ("hd+dd", True))]
                    ratios, cpu = [], {"off": [], "on": []}
                    for r in range(pair_rounds):
                        recs = {}
                        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                            recs[i] = measure(d, pair[i])
                        if recs[0]["value"] and recs[1]["value"]:
                            ratios.append(recs[1]["value"] / recs[0]["value"])
                            cpu["off"].append(recs[0]["cpu_s_per_gb"])
                            cpu["on"].append(recs[1]["cpu_s_per_gb"])
                        log("  digest pair %-5s %-5s round %d: off %s on %s MB/s" % (
                            d.name, rw, r, fmt(recs[0]["value"], "%.0f"), fmt(recs[1]["value"], "%.0f")))
                    if ratios:
                        paired.setdefault(d.name, {})[rw] = {
                            "cost": round(1 - med(ratios), 4), "ratios": [round(x, 4) for x in ratios],
                            "cpu_s_per_gb_off": med([x for x in cpu["off"] if x]),
                            "cpu_s_per_gb_on": med([x for x in cpu["on"] if x])}
            if paired:
                result["digest_cost_paired"] = paired
                print("digest cost at 1M, paired rounds (median of on/off per round): " + ", ".join(
                    "%s %s %.1f%%" % (n, rw, c["cost"] * 100) for n, v in paired.items() for rw, c in v.items()),
                    flush=True)
        soak_secs = int(os.environ.get("BENCH_SOAK", "0") or 0)
        if soak_secs > 0:
            want = os.environ.get("BENCH_SOAK_DAEMONS", "ietd").split(",")
            result["soak"] = {}
            for d in daemons:
                if d.name not in want:
                    continue
                log("soak: %s for %d s" % (d.name, soak_secs))
                r = soak(d, soak_secs)
                result["soak"][d.name] = r
                print("soak %s %ds: %s MB/s, peak RSS %s MiB, RSS slope (2nd half) %s KiB/min, alive %s" % (
                    d.name, soak_secs, fmt(r.get("mb_per_s"), "%.0f"),
                    fmt(r.get("vmhwm_kib") and r["vmhwm_kib"] / 1024, "%.1f"),
                    fmt(r.get("rss_slope_kib_per_min_second_half"), "%.0f"), r.get("alive")), flush=True)
        for d in daemons:
            info = result["daemons"][d.name]
            info["vmhwm_kib_end"] = status_kib(d.pid, "VmHWM")
            peaks = [e["results"][d.name]["peak_rss_kib"] or 0 for e in result["workloads"]]
            peaks.append(result.get("soak", {}).get(d.name, {}).get("vmhwm_kib") or 0)
            info["peak_rss_kib"] = max(peaks) or None
            info["cpu_s_total"] = cpu_seconds(d.pid)
            info["alive_at_end"] = alive(d.pid)
        print("peak RSS over all workloads: " + ", ".join(
            "%s %s MiB" % (n, fmt(v["peak_rss_kib"] and v["peak_rss_kib"] / 1024, "%.1f"))
            for n, v in result["daemons"].items()))
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with open(out_path, "w") as f:
            json.dump(result, f, indent=1)
        print("result: %s" % out_path)
    except (RuntimeError, OSError) as e:
        log("bench: %s" % e)
        rc = 1
    finally:
        for d in daemons:
            d.stop()
        if keep or rc:
            log("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
