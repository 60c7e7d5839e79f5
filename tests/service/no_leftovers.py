#!/usr/bin/python3
"""Fails if a process still runs whose command line names PATH (a directory a script's processes
were given): deploy/demo.sh promises to stop everything it started.

    no_leftovers.py PATH
"""

import os
import sys


def main():
    path = os.path.realpath(sys.argv[1])
    me = os.getpid()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == me:
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(a == path or a.startswith(path + "/") for a in args):
            left.append("%s: %s" % (pid, " ".join(args).strip()))
    for line in left:
        print("still running: " + line)
    print("%d processes still name %s" % (len(left), path))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
