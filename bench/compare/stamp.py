#!/usr/bin/env python3
"""stamp.py OUTFILE -- CMD [ARGS...]: run CMD and write each line of its
standard output to OUTFILE prefixed with the host's CLOCK_REALTIME at the
moment the line was read ("1795440817.585802 <line>"), flushed at once.

Used by compare.sh to time `totemctl cpg listen --json` events on the same
clock as the kill. SIGTERM/SIGINT are passed on to CMD; stamp.py exits when
CMD's output ends, with CMD's exit status.
"""
import os
import signal
import subprocess
import sys
import time


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        print("usage: stamp.py OUTFILE -- CMD [ARGS...]", file=sys.stderr)
        return 2
    out = open(argv[1], "w")
    child = subprocess.Popen(argv[3:], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def forward(sig, _frame):
        try:
            child.send_signal(sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    fd = child.stdout.fileno()
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except InterruptedError:
            continue
        now = time.time()
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.write(f"{now:.6f} {line.decode(errors='replace')}\n")
        out.flush()
    if buf:
        out.write(f"{time.time():.6f} {buf.decode(errors='replace')}\n")
    out.close()
    return child.wait() if child.wait() >= 0 else 128 - child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
