#!/usr/bin/env python3
"""Lease-scale benchmark helper, run inside the sandbox by tests/bench/leases.sh.

  leases.py setup STATE POLICY N_STAGGER N_BURST STAGGER_FROM STAGGER_TO BURST_AT LONG
      Write a lease journal the daemon loads at start-up: N_STAGGER active leases with deadlines
      spread uniformly between now+STAGGER_FROM and now+STAGGER_TO seconds, N_BURST more all due
      at now+BURST_AT, and LONG leases due in an hour. Each grants one group membership, which is
      put in /etc/group as the daemon would have. Writes STATE/bench-deadlines.json.
  leases.py watch STATE SECONDS
      Poll /etc/group every 10 ms and report, per membership, deadline -> removal lag.
"""
import json, os, sys, time

PROFILES = 100


def setup(state, policy, n_stagger, n_burst, s_from, s_to, burst_at, n_long):
    now = int(time.time() * 1000)
    total = n_stagger + n_burst + n_long
    groups = {}
    deadlines = {}
    os.makedirs(state, exist_ok=True)
    with open(os.path.join(state, "leases.jsonl"), "w") as j:
        for i in range(total):
            user, p = f"bu{i // PROFILES}", i % PROFILES
            if i < n_stagger:
                due = now + int((s_from + (s_to - s_from) * i / max(1, n_stagger)) * 1000)
            elif i < n_stagger + n_burst:
                due = now + burst_at * 1000
            else:
                due = now + 3600 * 1000
            group, gid = f"bgrp{p}", 40000 + p
            groups.setdefault(group, (gid, []))[1].append(user)
            if i < n_stagger + n_burst:
                deadlines[f"{user}:{group}"] = [due, "burst" if i >= n_stagger else "stagger"]
            j.write(json.dumps({
                "id": i + 1, "uid": 50000 + i // PROFILES, "user": user, "profile": f"p{p}",
                "state": "active", "duration_ms": due - now, "requested_at_ms": now,
                "approvals": [], "approvals_needed": 0, "activated_at_ms": now, "expires_at_ms": due,
                "grants": [{"group": group, "gid": gid, "standing": False, "applied": True}],
                "break_glass": False,
            }) + "\n")
    with open("/etc/group", "a") as g, open("/etc/gshadow", "a") as gs:
        for name, (gid, members) in groups.items():
            g.write(f"{name}:x:{gid}:{','.join(members)}\n")
            gs.write(f"{name}:!::{','.join(members)}\n")
    with open(os.path.join(policy, "50-bench.toml"), "w") as f:
        for p in range(PROFILES):
            f.write(f'[[profile]]\nname = "p{p}"\nusers = ["bu0"]\naccess = "lease"\n'
                    f'max_duration = "2h"\ngrant_groups = ["bgrp{p}"]\n\n')
    with open(os.path.join(state, "bench-deadlines.json"), "w") as f:
        json.dump(deadlines, f)


def members():
    out = set()
    with open("/etc/group") as f:
        for line in f:
            parts = line.rstrip("\n").split(":")
            if len(parts) == 4 and parts[0].startswith("bgrp") and parts[3]:
                for m in parts[3].split(","):
                    out.add(f"{m}:{parts[0]}")
    return out


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else None


def watch(state, seconds):
    deadlines = json.load(open(os.path.join(state, "bench-deadlines.json")))
    gone = {}
    rewrites = 0
    last_ino = os.stat("/etc/group").st_ino
    end = time.time() + seconds
    while time.time() < end and len(gone) < len(deadlines):
        ino = os.stat("/etc/group").st_ino
        if ino != last_ino:
            rewrites += 1
            last_ino = ino
            now = int(time.time() * 1000)
            present = members()
            for k in deadlines:
                if k not in gone and k not in present:
                    gone[k] = now
        time.sleep(0.01)
    lag = {"stagger": [], "burst": []}
    for k, (due, kind) in deadlines.items():
        if k in gone:
            lag[kind].append((gone[k] - due) / 1000.0)
    burst_done = max(lag["burst"]) if lag["burst"] else None
    st = lag["stagger"]
    print(json.dumps({
        "stagger_leases": sum(1 for v in deadlines.values() if v[1] == "stagger"),
        "stagger_removed": len(st),
        "lag_p50_s": pct(st, 0.5), "lag_p99_s": pct(st, 0.99), "lag_max_s": max(st) if st else None,
        "burst_leases": sum(1 for v in deadlines.values() if v[1] == "burst"),
        "burst_removed": len(lag["burst"]),
        "burst_all_removed_after_s": burst_done,
        "group_file_rewrites_seen": rewrites,
        "never_removed": len(deadlines) - len(gone),
    }))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        a = sys.argv[2:]
        setup(a[0], a[1], int(a[2]), int(a[3]), float(a[4]), float(a[5]), int(a[6]), int(a[7]))
    elif cmd == "watch":
        watch(sys.argv[2], float(sys.argv[3]))
