"""The eight invariants of the kill -9 campaign, and the checker that counts their violations.

A check round looks at one Observation: the daemon's leases, /etc/group read just after them,
and the audit log. The leases are read from the daemon's journal (`STATE/leases.jsonl`, the
last record of each id wins): what it loaded at start-up, and written before anything is
acknowledged or acted on: what a restart would reconcile from, read straight, without asking
the daemon (whose listing keeps only a day of ended leases). Traffic is
paused for the round, so only the daemon's own tick moves things between the two reads (it
can end a lease the journal read still shows active: that direction is harmless; it cannot
grant anything the read does not show, because activating needs a request or an approval).

Counting: `checks` is the number of things examined (a membership, a lease, a file), summed
over rounds; `violations` counts episodes, not rounds: a violation that persists from one
round to the next (an orphaned membership, a duplicate audit record) is counted once, when
it first appears.

python3 standard library only.
"""
import collections
import copy
import datetime
import json
import os
import shutil
import subprocess
import threading

INVARIANTS = [
    ("membership", "memberships past deadline + 1 s after restart"),
    ("lost", "acknowledged leases lost (or going backwards)"),
    ("standing", "standing members touched"),
    ("ids", "lease ids reused"),
    ("endings", "endings audited != 1"),
    ("unsaved", "requests audited, never journaled, not said so"),
    ("grpck", "grpck -r fails on /etc/group"),
    ("verify", "elevate audit verify fails"),
]

# daemon/src/core/expiry.rs (end_batch), the only place an ending is audited: one of these per
# lease that ends (an approval-needing request that times out is `lease.ended`).
ENDING_EVENTS = {"lease.expired", "lease.revoked", "lease.denied", "lease.ended"}
RANK = {"pending": 0, "active": 1, "ended": 2}
SLACK_S = 1.0


def rfc3339_s(text):
    """Seconds since the epoch of the daemon's `2026-11-30T12:00:00.123Z`."""
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def from_info(info):
    """A lease as the CLI prints it (`LeaseInfo`), in the form the checker compares."""
    return {"id": info["id"], "user": info["user"], "profile": info["profile"], "state": info["state"],
            "expires": rfc3339_s(info.get("expires_at")), "groups": info.get("grant_groups") or [],
            "approvers": [a["user"] for a in info.get("approvals") or []],
            "end_reason": info.get("end_reason"), "pending_until": rfc3339_s(info.get("pending_until"))}


def from_journal(rec):
    """A lease as the daemon journals it (daemon/src/lease/model.rs), in the same form."""
    def s(key):
        return rec[key] / 1000 if rec.get(key) is not None else None
    state = rec["state"]
    return {"id": rec["id"], "user": rec["user"], "profile": rec["profile"], "state": state,
            "expires": s("expires_at_ms") if state == "active" else None,
            "groups": [g["group"] for g in rec.get("grants") or []],
            "approvers": [a["user"] for a in rec.get("approvals") or []],
            "end_reason": rec.get("end_reason"),
            "pending_until": s("pending_until_ms") if state == "pending" else None}


def read_journal(path):
    """{id: lease} from the journal; a torn last line (a kill mid-write) is skipped, as the
    daemon skips it."""
    leases = {}
    with open(path, "rb") as f:
        for raw in f.read().splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            leases[rec["id"]] = from_journal(rec)
    return leases


def memberships(group_text):
    """{group: [members]} of an /etc/group text."""
    out = {}
    for line in group_text.splitlines():
        parts = line.split(":")
        if len(parts) == 4:
            out[parts[0]] = [m for m in parts[3].split(",") if m]
    return out


class AuditIndex:
    """What the campaign needs from the audit log, read incrementally (the log only grows):
    how often each lease id was requested and ended, and the deadlines of expired leases."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.requested = collections.Counter()
        self.endings = collections.Counter()
        self.ending_lines = {}
        self.request_lines = {}
        self.not_saved = set()  # lease.not_saved: audited as requested, never took effect
        self.expired = []  # (deadline s, audited at s)
        self.unreadable = []  # line numbers that are not JSON
        self.lines = 0

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self
        end = data.rfind(b"\n") + 1  # a line still being written is read next round
        self.offset += end
        for raw in data[:end].splitlines():
            self.lines += 1
            self.add(raw)
        return self

    def add(self, raw):
        try:
            rec = json.loads(raw)
        except ValueError:
            self.unreadable.append(self.lines)
            return
        event, lease = rec.get("event"), rec.get("lease")
        if lease is None:
            return
        if event == "lease.not_saved":
            self.not_saved.add(lease)
        elif event == "lease.requested":
            self.requested[lease] += 1
            self.request_lines.setdefault(lease, []).append(self.lines)
        elif event in ENDING_EVENTS:
            self.endings[lease] += 1
            self.ending_lines.setdefault(lease, []).append((self.lines, event))
            if event == "lease.expired" and rec.get("expires_at"):
                self.expired.append((rfc3339_s(rec["expires_at"]), rfc3339_s(rec.get("time"))))


class Observation:
    """One round's view: the leases, /etc/group read after them, and the files to check."""

    def __init__(self, leases, group_text, at, paths, audit):
        self.leases = leases  # {id: lease}: from_journal
        self.group_text = group_text
        self.at = at
        self.paths = paths  # group, gshadow, audit, anchor
        self.audit = audit


class Ledger:
    """What clients were told (acknowledged) and what check rounds read, per lease id: the
    floor each must never fall below, and the latest state (which traffic picks from)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.leases = {}
        self.acked_requests = collections.Counter()

    def record(self, lease, source, request=False):
        """A lease a client was told about (source: the operation) or a check round read."""
        with self.lock:
            lid = lease["id"]
            if request:
                self.acked_requests[lid] += 1
            r = self.leases.setdefault(lid, {
                "user": lease["user"], "profile": lease["profile"], "rank": -1, "expires": None,
                "approvals": 0, "state": None, "latest_expires": None, "approved_by": set(),
                "source": source})
            rank = RANK.get(lease["state"], -1)
            if rank >= r["rank"]:
                r["rank"], r["source"] = rank, source
            expires = lease["expires"] if lease["state"] == "active" else None
            if expires and (r["expires"] or 0) < expires:
                r["expires"] = expires
            if lease["state"] == "pending":
                r["approvals"] = max(r["approvals"], len(lease["approvers"]))
            r["approved_by"].update(lease["approvers"])
            r["state"], r["latest_expires"] = lease["state"], expires


class Checker:
    def __init__(self, cast, bin_dir, baseline_group):
        self.cast = cast  # requesters, granted groups, standing {(user, group)}
        self.bin_dir = bin_dir
        self.baseline = memberships(baseline_group)
        self.checks = collections.Counter()
        self.violations = collections.Counter()
        self.examples = collections.defaultdict(list)
        self.previous = collections.defaultdict(set)
        self.round = None
        self.rounds = 0

    def fresh(self):
        """A copy with no rounds counted: the self-test's scratch checker."""
        c = copy.deepcopy(self)
        c.checks, c.violations = collections.Counter(), collections.Counter()
        c.previous = collections.defaultdict(set)
        return c

    def flag(self, inv, key, message):
        self.round[inv][key] = message

    def check(self, obs, ledger, final=False):
        """One round over `obs`; `ledger` is what clients were told. `final`: traffic has
        stopped and every deadline is 1 s past, so nothing at all may still be live."""
        self.round = collections.defaultdict(dict)
        self.rounds += 1
        self.check_memberships(obs, final)
        self.check_lost(obs, ledger)
        self.check_standing(obs)
        self.check_ids(obs, ledger)
        self.check_endings(obs)
        self.check_unsaved(obs)
        self.check_tools(obs)
        for inv, _ in INVARIANTS:
            now = self.round.get(inv, {})
            for key in set(now) - self.previous[inv]:
                self.violations[inv] += 1
                if len(self.examples[inv]) < 8:
                    self.examples[inv].append(f"round {self.rounds}: {now[key]}")
            self.previous[inv] = set(now)
        return self

    def check_memberships(self, obs, final):
        groups = memberships(obs.group_text)
        cover = collections.defaultdict(list)
        for l in obs.leases.values():
            if l["state"] == "active":
                deadline = l["expires"] or 0
                for g in l["groups"]:
                    cover[(l["user"], g)].append(deadline)
                self.checks["membership"] += 1
                if deadline + SLACK_S < obs.at:
                    self.flag("membership", ("active", l["id"]),
                              f"lease {l['id']} ({l['user']}, {l['profile']}) still active "
                              f"{obs.at - deadline:.2f} s past its deadline")
            elif final and l["state"] == "pending":
                self.flag("membership", ("pending", l["id"]), f"lease {l['id']} still pending at the end")
        for g in self.cast["granted"]:
            for user in groups.get(g, []):
                if (user, g) in self.cast["standing"]:
                    continue
                self.checks["membership"] += 1
                live = [d for d in cover.get((user, g), []) if d + SLACK_S >= obs.at]
                if not live:
                    seen = cover.get((user, g))
                    why = f"the covering lease's deadline was {obs.at - max(seen):.2f} s ago" if seen else "no active lease grants it"
                    self.flag("membership", (user, g), f"{user} is in {g}: {why}")

    def check_lost(self, obs, ledger):
        with ledger.lock:  # (traffic is paused: nothing records meanwhile)
            recorded = list(ledger.leases.items())
        for lid, r in recorded:
            self.checks["lost"] += 1
            l = obs.leases.get(lid)
            who = f"lease {lid} ({r['user']}, {r['profile']}; {r['source']})"
            if l is None:
                self.flag("lost", ("gone", lid), f"{who}: the daemon no longer knows it")
                continue
            rank = RANK.get(l["state"], -1)
            if rank < r["rank"]:
                self.flag("lost", ("back", lid), f"{who}: state went back to {l['state']}")
            if l["state"] == "active" and r["expires"] and l["expires"] and l["expires"] + 0.001 < r["expires"]:
                self.flag("lost", ("deadline", lid), f"{who}: deadline went back by {r['expires'] - l['expires']:.3f} s")
            if l["state"] == "pending" and len(l["approvers"]) < r["approvals"]:
                self.flag("lost", ("approval", lid), f"{who}: an acknowledged approval is gone")

    def check_standing(self, obs):
        groups = memberships(obs.group_text)
        for user, g in sorted(self.cast["standing"]):
            self.checks["standing"] += 1
            if user not in groups.get(g, []):
                self.flag("standing", (user, g), f"standing member {user} is no longer in {g}")
        for g, members in self.baseline.items():
            if g in self.cast["granted"]:
                continue
            self.checks["standing"] += 1
            if groups.get(g) != members:
                self.flag("standing", ("group", g), f"{g} changed: {members} -> {groups.get(g)}")

    def check_ids(self, obs, ledger):
        for lid, n in obs.audit.requested.items():
            self.checks["ids"] += 1
            if n > 1:
                self.flag("ids", ("audit", lid), f"lease id {lid} audited as requested {n} times "
                          f"(lines {obs.audit.request_lines[lid]})")
        for lid, n in ledger.acked_requests.items():
            self.checks["ids"] += 1
            if n > 1:
                self.flag("ids", ("acked", lid), f"lease id {lid} returned to {n} acknowledged requests")

    def check_endings(self, obs):
        ended = {lid for lid, l in obs.leases.items() if l["state"] == "ended"}
        for lid in sorted(ended | {i for i, n in obs.audit.endings.items() if n > 1}):
            self.checks["endings"] += 1
            n = obs.audit.endings.get(lid, 0)
            if n != 1:
                lines = obs.audit.ending_lines.get(lid, [])
                l = obs.leases.get(lid, {})
                self.flag("endings", lid, f"lease {lid} ({l.get('user')}, {l.get('profile')}, "
                          f"{l.get('end_reason')}) has {n} ending records (line, event): {lines}")

    def check_unsaved(self, obs):
        """A request is audited before it is journaled: one a kill cut in between must be
        followed, once the daemon has started again, by a lease.not_saved record."""
        for lid in obs.audit.requested:
            self.checks["unsaved"] += 1
            if lid not in obs.leases and lid not in obs.audit.not_saved:
                self.flag("unsaved", lid, f"lease {lid} audited as requested (lines "
                          f"{obs.audit.request_lines.get(lid)}), not in the journal, no lease.not_saved")

    def check_tools(self, obs):
        self.checks["grpck"] += 1
        p = subprocess.run(["grpck", "-r", obs.paths["group"], obs.paths["gshadow"]],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.flag("grpck", "grpck", f"grpck -r exit {p.returncode}: {(p.stdout + p.stderr).strip()[:300]}")
        self.checks["verify"] += 1
        p = subprocess.run([os.path.join(self.bin_dir, "elevate"), "audit", "verify", obs.paths["audit"],
                            "--anchor", obs.paths["anchor"]], capture_output=True, text=True)
        if p.returncode != 0:
            self.flag("verify", "verify", f"audit verify exit {p.returncode}: {(p.stdout + p.stderr).strip()[:300]}")
        for n in obs.audit.unreadable:
            self.flag("verify", ("line", n), f"audit line {n} is not JSON")


# --- self-test: the checker must see what it is meant to see -------------------------------

def self_test(checker, ledger, obs, scratch):
    """Plant one violation of each invariant in scratch copies of the last observation and
    confirm the matching counter goes up against a scratch checker given the same copies
    unplanted. Returns (invariant, what was planted, violations before, after) per case."""
    os.makedirs(scratch, exist_ok=True)
    paths = {}
    for name, src in obs.paths.items():
        paths[name] = os.path.join(scratch, os.path.basename(src))
        shutil.copyfile(src, paths[name])
    groups = memberships(obs.group_text)
    granted = checker.cast["granted"][0]
    stander, stood = sorted(checker.cast["standing"])[0]
    outsider = next(u for u in checker.cast["requesters"] if u not in groups.get(granted, []))
    acked = next(lid for lid in ledger.leases if lid in obs.leases)
    ended = next(lid for lid, l in obs.leases.items()
                 if l["state"] == "ended" and obs.audit.endings.get(lid) == 1)

    def with_group(edit):
        lines = []
        for line in obs.group_text.splitlines():
            name, _, _, members = line.split(":")
            members = [m for m in members.split(",") if m]
            lines.append(":".join(line.split(":")[:3] + [",".join(edit(name, members))]))
        return "\n".join(lines) + "\n"

    def plant_member(name, members):
        return members + [outsider] if name == granted else members

    def drop_standing(name, members):
        return [m for m in members if not (name == stood and m == stander)]

    def audit_with(line_pick):
        with open(obs.paths["audit"], "rb") as f:
            lines = f.read().splitlines(keepends=True)
        n = next(i for i, raw in enumerate(lines) if line_pick(json.loads(raw)))
        with open(paths["audit"], "wb") as f:
            f.writelines(lines + [lines[n]])

    cases = []
    clean = Observation(obs.leases, obs.group_text, obs.at, paths, AuditIndex(paths["audit"]).update())

    def case(inv, what, group_text=None, leases=None, audit_pick=None, group_file=None):
        shutil.copyfile(obs.paths["audit"], paths["audit"])
        shutil.copyfile(obs.paths["group"], paths["group"])
        before = checker.fresh().check(clean, ledger).violations[inv]
        if audit_pick:
            audit_with(audit_pick)
        if group_text or group_file:
            with open(paths["group"], "w") as f:
                f.write((group_text or obs.group_text) + (group_file or ""))
        with open(paths["group"]) as f:
            planted = f.read()
        audit = AuditIndex(paths["audit"]).update()
        o = Observation(leases if leases is not None else obs.leases, planted, obs.at, paths, audit)
        after = checker.fresh().check(o, ledger).violations[inv]
        cases.append((inv, what, before, after))

    case("membership", f"plant {outsider} in {granted}", group_text=with_group(plant_member))
    case("lost", f"drop acknowledged lease {acked} from the journal read",
         leases={k: v for k, v in obs.leases.items() if k != acked})
    case("standing", f"remove {stander} from {stood}", group_text=with_group(drop_standing))
    case("ids", "duplicate a lease.requested record", audit_pick=lambda r: r.get("event") == "lease.requested")
    case("endings", f"duplicate lease {ended}'s ending record",
         audit_pick=lambda r: r.get("lease") == ended and r.get("event") in ENDING_EVENTS)
    case("unsaved", f"drop lease {acked} from the journal read",
         leases={k: v for k, v in obs.leases.items() if k != acked})
    case("grpck", "duplicate a group line", group_file=obs.group_text.splitlines()[0] + "\n")
    case("verify", "duplicate an audit record", audit_pick=lambda r: True)
    return cases
