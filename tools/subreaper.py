#!/usr/bin/env python3
"""Runs a command as a child subreaper that reaps orphaned processes at once.

    python3 tools/subreaper.py COMMAND [ARG...]

libvirtd daemonizes QEMU, so a QEMU that ends is reaped by the nearest subreaper, else by
PID 1. On a host, PID 1 (systemd) reaps at once. On this kind of machine PID 1 is a sandbox
init that reaps orphans late: a QEMU killed after a migration stayed a zombie for up to
1.5 s, and libvirt, which waits for its PID to go, waited with it (bench/migration_bench.ts).
Run under this, the daemons a benchmark starts have a parent that reaps as a host's would.
Exits with the command's status; signals it gets are passed on to the command.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"subreaper: prctl: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 2
    child = os.fork()
    if child == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        except OSError as error:
            print(f"subreaper: {sys.argv[1]}: {error.strerror}", file=sys.stderr)
            os._exit(127)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: os.kill(child, number))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if pid == child:
            # Orphans still running (a daemon the command left) go back to PID 1 with us.
            return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
