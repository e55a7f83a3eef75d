"""Benchmarks pyhsm side by side with SoftHSMv2, with `openssl speed` as the physical limit.

    bash bench/run.sh            # the full run (about 10 minutes on 2 cores); writes bench/results/latest.{md,png,json}
    bash bench/run.sh --quick    # a smoke run of every code path with tiny counts

The C driver (bench/driver.c) dlopens each module and runs the same calls against both. The two modules alternate
pass by pass (pyhsm first in odd passes, SoftHSM first in even ones) and `openssl speed` runs after them in every
pass, so that the noise of a shared machine falls on all three; each figure is the median over the passes. Every
token lives in a temporary directory: SoftHSM's through its own SOFTHSM2_CONF, pyhsm's through PYHSM_STORE_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "interop" / "nginx")]

import nginx_bench  # noqa: E402
import report  # noqa: E402
from p11_helpers import generated_header_path  # noqa: E402

SOFTHSM_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN, SO_PIN = "bench-user-1", "bench-so-1"
RESULTS = ROOT / "bench" / "results"


@dataclass
class Module:
    name: str
    path: str
    env: dict[str, str]  # the "bench" and "nginx" tokens, on disk
    find_env: dict[str, str]  # the tokens to find among, on tmpfs (see find_store)
    results: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class Settings:
    passes: int
    seconds: float
    find_counts: tuple[int, ...]
    handshakes: int
    openssl_seconds: int


FULL = Settings(passes=5, seconds=0.5, find_counts=(100, 1000, 10000), handshakes=600, openssl_seconds=1)
QUICK = Settings(passes=1, seconds=0.02, find_counts=(100,), handshakes=10, openssl_seconds=1)


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(cmd: list[str], env: Mapping[str, str] | None = None, cwd: str | Path | None = None) -> str:
    result = subprocess.run(cmd, env=None if env is None else dict(env), cwd=cwd, capture_output=True, text=True,
                            check=False, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:3])} ... failed ({result.returncode}):\n{result.stderr.strip()}")
    return result.stdout


def build_driver(work: Path) -> Path:
    """Compile the driver against the project's generated PKCS#11 declarations (pyhsm_gen.h, ck_constants.h)."""
    include = generated_header_path(work)
    binary = work / "driver"
    source = ROOT / "bench" / "driver.c"
    run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{include}", "-o", str(binary),
         str(source), "-ldl", "-lpthread"])
    return binary


MAIN_LABELS = ["bench", "nginx"]


def find_labels(settings: Settings) -> list[str]:
    return [f"find{n}" for n in settings.find_counts]


def find_store(work: Path) -> Path:
    """Where the find tokens live: tmpfs when there is one. SoftHSM fsyncs every token object it writes (~50 ms each
    on this shared machine's disk), so 10,000 objects would take longer than the whole benchmark; a find itself only
    reads, so the file system hardly matters to it. Both modules get the same place."""
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="pyhsm-bench-", dir=shm)) if shm.is_dir() else work / "finds"
    base.mkdir(exist_ok=True)
    return base


def softhsm(work: Path, finds: Path, settings: Settings) -> Module:
    envs = []
    for base, labels in ((work, MAIN_LABELS), (finds, find_labels(settings))):
        tokens = base / "softhsm" / "tokens"
        tokens.mkdir(parents=True)
        conf = base / "softhsm" / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
        env = dict(os.environ, SOFTHSM2_CONF=str(conf))
        for label in labels:
            run(["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
                env=env)
        envs.append(env)
    return Module("SoftHSM", SOFTHSM_LIBRARY, envs[0], envs[1])


def pyhsm(work: Path, finds: Path, settings: Settings) -> Module:
    cli = [sys.executable, "-P", "-m", "pyhsm.cli.main"]
    envs = []
    for base, labels in ((work, MAIN_LABELS), (finds, find_labels(settings))):
        store = base / "pyhsm"
        store.mkdir()
        env = dict(os.environ, PYHSM_STORE_DIR=str(store))
        for label in labels:
            run([*cli, "token", "init", "--label", label, "--so-pin", SO_PIN, "--pin", PIN], env=env, cwd="/")
        envs.append(env)
    return Module("pyhsm", run([*cli, "module-path"], cwd="/").strip(), envs[0], envs[1])


def prepare(driver: Path, module: Module, settings: Settings) -> None:
    run([str(driver), module.path, "setup", "bench", PIN], env=module.env)
    for count in settings.find_counts:
        run([str(driver), module.path, "populate", f"find{count}", PIN, str(count)], env=module.find_env)


def measure_pass(driver: Path, module: Module, settings: Settings, units: dict[str, str]) -> None:
    out = run([str(driver), module.path, "pass", "bench", PIN, str(settings.seconds)], env=module.env)
    out += run([str(driver), module.path, "finds", str(settings.seconds), *find_labels(settings)],
               env=module.find_env)
    for line in out.splitlines():
        name, value, unit = line.split("\t")
        module.results[name].append(float(value))
        units[name] = unit


def openssl_speed(seconds: int, quick: bool) -> dict[str, float]:
    """The same primitives in `openssl speed` (ops/s, or MB/s for the byte-oriented ones), named like ours."""
    limits: dict[str, float] = {}
    algorithms = ["rsa2048", "ecdsap256"] if quick else ["rsa2048", "rsa3072", "ecdsap256", "ecdsap384"]
    for line in run(["openssl", "speed", "-mr", "-seconds", str(seconds), *algorithms]).splitlines():
        fields = line.split(":")
        if fields[0] == "+F2":  # +F2:index:bits:sign/s:verify/s
            for op in ("sign_pkcs", "sign_pss"):
                limits[f"rsa{fields[2]}_{op}"] = float(fields[3])
            limits[f"rsa{fields[2]}_verify_pkcs"] = float(fields[4])
        elif fields[0] == "+F4":  # +F4:index:bits:sign/s:verify/s
            limits[f"ecdsa_p{fields[2]}_sign"] = float(fields[3])
            limits[f"ecdsa_p{fields[2]}_verify"] = float(fields[4])
    sizes = {"64B": 64, "4KiB": 4096} if quick else {"64B": 64, "4KiB": 4096, "64KiB": 65536}
    ciphers = {"aes256_gcm_encrypt": ["-evp", "aes-256-gcm"], "aes256_cbc_pad_encrypt": ["-evp", "aes-256-cbc"]}
    jobs = [(f"{name}_{size}", [*args, "-bytes", str(n)]) for name, args in ciphers.items()
            for size, n in sizes.items()]
    jobs += [("hmac_sha256_4KiB", ["-hmac", "sha256", "-bytes", "4096"]),
             ("sha256_digest_4KiB", ["-evp", "sha256", "-bytes", "4096"])]
    for name, args in jobs:
        out = run(["openssl", "speed", "-mr", "-seconds", str(seconds), *args])
        line = next(line for line in out.splitlines() if line.startswith("+F:"))
        limits[name] = float(line.split(":")[-1]) / 1e6  # +F:index:name:bytes/s
    return limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that everything runs")
    parser.add_argument("--passes", type=int, help="passes per module (default 5, quick 1)")
    parser.add_argument("--no-nginx", action="store_true", help="skip the NGINX handshake figures")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for latest.md and latest.png")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    if args.passes:
        settings.passes = args.passes
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="pyhsm-bench-"))
    work.chmod(0o755)
    finds = find_store(work)
    try:
        step("driver: gcc bench/driver.c")
        driver = build_driver(work)
        modules = [pyhsm(work, finds, settings), softhsm(work, finds, settings)]
        for module in modules:
            step(f"{module.name}: token keys and {', '.join(map(str, settings.find_counts))} objects to find among")
            prepare(driver, module, settings)
        units: dict[str, str] = {}
        limits: dict[str, list[float]] = defaultdict(list)
        for n in range(settings.passes):  # openssl speed takes its turn too: the limit under the same load
            for module in modules if n % 2 == 0 else modules[::-1]:
                step(f"pass {n + 1}/{settings.passes}: {module.name}")
                measure_pass(driver, module, settings, units)
            step(f"pass {n + 1}/{settings.passes}: openssl speed (the limit)")
            for name, value in openssl_speed(settings.openssl_seconds, args.quick).items():
                limits[name].append(value)
        handshakes: dict[str, dict[str, float]] = {}
        if not args.no_nginx:
            step(f"NGINX: worker CPU per TLS handshake ({settings.handshakes} per key and location)")
            handshakes = nginx_bench.measure(work, {m.name: (m.path, m.env) for m in modules}, PIN,
                                             settings.handshakes)
        medians = {m.name: {name: statistics.median(values) for name, values in m.results.items()} for m in modules}
        openssl = {name: statistics.median(values) for name, values in limits.items()}
        table = report.Report(medians["pyhsm"], medians["SoftHSM"], units, openssl, handshakes, settings.passes,
                              time.monotonic() - started, quick=args.quick)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latest.md").write_text(table.markdown())
        raw = {"units": units, "openssl": limits, "nginx_ms_per_handshake": handshakes,
               **{m.name: m.results for m in modules}}
        (args.out / "latest.json").write_text(json.dumps(raw, indent=1) + "\n")  # every pass, for a second look
        table.plot(args.out / "latest.png")
        step(f"wrote {args.out / 'latest.md'}, latest.png and latest.json in {time.monotonic() - started:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(finds, ignore_errors=True)


if __name__ == "__main__":
    main()
