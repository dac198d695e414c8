#!/usr/bin/env python3
"""Turn the raw benchmark outputs into the table and target/bench/summary.json.

usage: summarize.py FACTS HYPERFINE_JSON LOADGEN_JSON OUT_JSON

FACTS is a file of `key=value` lines written by run.sh (machine info, daemon RSS, CPU time).
Targets are reported as PASS/MISS; a missed target is a result, not a failure, so this exits 0
whenever it could read its inputs.
"""

import json
import sys

TARGETS = {
    "elevate_vs_sudo": 0.4,  # elevate run mean / sudo -n mean, at most
    "throughput_per_s": 20_000,  # decisions/s with 64 clients, at least
    "p99_us": 2_000,  # decision latency p99 with 64 clients, at most
    "rss_kib": 16 * 1024,  # daemon VmRSS and VmHWM, at most
}


def read_facts(path):
    facts = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                facts[k] = v
    return facts


def verdict(ok):
    return "PASS" if ok else "MISS"


def main(argv):
    if len(argv) != 5:
        sys.exit(__doc__)
    facts = read_facts(argv[1])
    with open(argv[2], encoding="utf-8") as f:
        hf = {r["command"]: r for r in json.load(f)["results"]}
    with open(argv[3], encoding="utf-8") as f:
        lg = json.load(f)

    ms = {name: hf[name]["mean"] * 1000 for name in ("true", "elevate", "sudo", "doas")}
    ratios = {
        "elevate_vs_sudo": ms["elevate"] / ms["sudo"],
        "elevate_vs_doas": ms["elevate"] / ms["doas"],
        "doas_vs_sudo": ms["doas"] / ms["sudo"],
        "elevate_vs_true": ms["elevate"] / ms["true"],
    }
    rss_kib = int(facts["rss_kib"])
    hwm_kib = int(facts["hwm_kib"])
    decisions = lg["requests"]
    # The CPU time covers the load generator's whole run (warm-up too): per decision it is
    # estimated with the measured rate over that wall time.
    cpu_s = float(facts["daemon_cpu_s_during_load"])
    wall_s = float(facts["load_wall_s"])
    cpu_share = cpu_s / wall_s if wall_s else float("nan")
    served = lg["throughput_per_s"] * wall_s
    cpu_us_per_decision = cpu_s * 1e6 / served if served else float("nan")

    print()
    print("== machine")
    print(f"  {facts['nproc']} CPUs ({facts['cpu_model']}), {facts['mem']} RAM, kernel {facts['kernel']}, {facts['os']}")
    print(f"  {facts['sudo_version']}; opendoas {facts['doas_version']}; {facts['hyperfine_version']}; elevate {facts['elevate_version']}")
    print()
    print(f"== 1. one privileged /usr/bin/true as {facts['user']} "
          f"(hyperfine -N, {facts['hf_warmup']} warm-up, {facts['hf_runs']} runs each)")
    print(f"  {'command':<34} {'mean':>9} {'stddev':>9} {'median':>9} {'min':>9} {'max':>9}")
    labels = {
        "true": "/usr/bin/true (no elevation)",
        "elevate": "elevate run /usr/bin/true",
        "sudo": "sudo -n /usr/bin/true",
        "doas": "doas -n /usr/bin/true",
    }
    for name in ("true", "elevate", "sudo", "doas"):
        r = hf[name]
        print(f"  {labels[name]:<34} " + " ".join(
            f"{r[k] * 1000:>6.3f} ms" for k in ("mean", "stddev", "median", "min", "max")))
    print(f"  ratios of means: elevate/sudo {ratios['elevate_vs_sudo']:.2f}x, "
          f"elevate/doas {ratios['elevate_vs_doas']:.2f}x, doas/sudo {ratios['doas_vs_sudo']:.2f}x, "
          f"elevate/true {ratios['elevate_vs_true']:.1f}x "
          f"(elevate adds {ms['elevate'] - ms['true']:.3f} ms over running true directly)")
    print()
    lat = lg["latency_us"]
    print(f"== 2. decisions: {lg['clients']} concurrent clients, one connection each, `check /usr/bin/true`, "
          f"{lg['duration_s']:.1f} s after {lg['warmup_s']:.1f} s warm-up (elevate-loadgen, as {facts['user']})")
    print(f"  {decisions} decisions, {lg['throughput_per_s']:.0f}/s; latency us: p50 {lat['p50']:.0f}, "
          f"p90 {lat['p90']:.0f}, p99 {lat['p99']:.0f}, max {lat['max']:.0f}, mean {lat['mean']:.0f}; "
          f"errors {lg['errors']}")
    print(f"  daemon CPU during the load: {cpu_s:.2f} s in {wall_s:.1f} s = {cpu_share:.2f} of "
          f"{facts['nproc']} CPUs, ~{cpu_us_per_decision:.1f} us per decision (the load generator shares them)")
    print("  NOTE: the daemon ran with its abuse limits raised for this: [limits] requests_per_second = 10000000,")
    print("        burst = 10000000, max_connections = 1024, max_connections_per_uid = 256 (defaults: 50, 100, 256, 32)")
    for e in lg.get("error_messages", []):
        print(f"  error x{e['count']}: {e['message']}")
    print()
    print(f"== 3. daemon memory after the runs, policy = the shipped policy.d/*.toml "
          f"({facts['policy_files']} files) + the benchmark profile")
    print(f"  VmRSS {rss_kib / 1024:.1f} MiB, VmHWM {hwm_kib / 1024:.1f} MiB "
          f"(at start: VmRSS {int(facts['rss_start_kib']) / 1024:.1f} MiB)")
    print()

    rows = [
        ("elevate run / sudo -n (mean time)", f"{ratios['elevate_vs_sudo']:.2f}x",
         f"<= {TARGETS['elevate_vs_sudo']}x", ratios["elevate_vs_sudo"] <= TARGETS["elevate_vs_sudo"]),
        (f"decision throughput, {lg['clients']} clients", f"{lg['throughput_per_s']:,.0f}/s",
         f">= {TARGETS['throughput_per_s']:,}/s", lg["throughput_per_s"] >= TARGETS["throughput_per_s"]),
        (f"decision latency p99, {lg['clients']} clients", f"{lat['p99'] / 1000:.2f} ms",
         f"<= {TARGETS['p99_us'] / 1000:.0f} ms", lat["p99"] <= TARGETS["p99_us"]),
        ("load generator errors", f"{lg['errors']}", "0", lg["errors"] == 0),
        ("daemon VmRSS after the runs", f"{rss_kib / 1024:.1f} MiB",
         f"<= {TARGETS['rss_kib'] // 1024} MiB", rss_kib <= TARGETS["rss_kib"]),
        ("daemon VmHWM (peak RSS)", f"{hwm_kib / 1024:.1f} MiB",
         f"<= {TARGETS['rss_kib'] // 1024} MiB", hwm_kib <= TARGETS["rss_kib"]),
    ]
    print("== summary")
    print(f"  {'figure':<38} {'measured':>12}  {'target':>12}  result")
    for name, got, want, ok in rows:
        print(f"  {name:<38} {got:>12}  {want:>12}  {verdict(ok)}")
    missed = [r[0] for r in rows if not r[3]]
    print(f"  {len(rows) - len(missed)} of {len(rows)} targets met" + (f"; missed: {', '.join(missed)}" if missed else ""))

    summary = {
        "machine": {k: facts[k] for k in ("nproc", "cpu_model", "mem", "kernel", "os")},
        "versions": {k: facts[k] for k in ("sudo_version", "doas_version", "hyperfine_version", "elevate_version")},
        "latency_ms": {
            name: {k: round(hf[name][k] * 1000, 4) for k in ("mean", "stddev", "median", "min", "max")}
            for name in ("true", "elevate", "sudo", "doas")
        },
        "hyperfine": {"warmup": int(facts["hf_warmup"]), "runs": int(facts["hf_runs"]), "user": facts["user"]},
        "ratios": {k: round(v, 4) for k, v in ratios.items()},
        "decisions": {
            "clients": lg["clients"],
            "duration_s": lg["duration_s"],
            "requests": decisions,
            "throughput_per_s": lg["throughput_per_s"],
            "latency_us": lat,
            "errors": lg["errors"],
            "error_messages": lg.get("error_messages", []),
            "daemon_cpu_s": cpu_s,
            "daemon_cpu_share": round(cpu_share, 3),
            "daemon_cpu_us_per_decision": round(cpu_us_per_decision, 2),
            "limits": {"requests_per_second": 10_000_000, "burst": 10_000_000,
                       "max_connections": 1024, "max_connections_per_uid": 256},
        },
        "memory_kib": {"vm_rss": rss_kib, "vm_hwm": hwm_kib, "vm_rss_at_start": int(facts["rss_start_kib"])},
        "targets": {name: {"measured": got, "target": want, "result": verdict(ok)} for name, got, want, ok in rows},
        "all_targets_met": not missed,
    }
    with open(argv[4], "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(f"  summary written to {argv[4]}")


if __name__ == "__main__":
    main(sys.argv)
