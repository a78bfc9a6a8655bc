"""Run the fuzz targets: ``python -m tests.fuzz.run [--seconds-per-target S | --runs N] [--targets a,b] [--jobs J]``.

Each target runs under atheris in its own process (:mod:`tests.fuzz.fuzz_one`) on a fresh corpus seeded from
the status-go vectors (:mod:`tests.fuzz.corpus`), so a crash is captured with its input and ends only that
target. Per target it prints the inputs executed, exec/s, the coverage libFuzzer reached (``cov`` = edges,
``ft`` = features) and the findings (crash, timeout and OOM inputs, copied to ``--findings``); then a total.
Exit status 1 if anything was found.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FINDINGS = Path(__file__).resolve().parent / "findings"
"""Where finding inputs are copied (not committed: a fixed finding's input moves to ``regressions/``)."""
TIMEOUT_S = 10
"""libFuzzer ``-timeout``: one input running longer is a finding (a hang)."""
RSS_LIMIT_MB = 2048


@dataclass
class Result:
    """What one target's run reported."""

    target: str
    inputs: int = 0
    exec_per_s: int = 0
    cov: int = 0
    ft: int = 0
    seconds: float = 0.0
    seeds: int = 0
    findings: list[Path] = field(default_factory=list)
    returncode: int = 0
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings and self.returncode == 0


_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)
_COV = re.compile(r"\bcov: (\d+) ft: (\d+)")


def parse_output(result: Result, output: str) -> None:
    """Fill ``result`` from libFuzzer's output (the last ``cov:``/``ft:`` figures, ``-print_final_stats``)."""
    stats = {name: int(value) for name, value in _STAT.findall(output)}
    result.inputs = stats.get("number_of_executed_units", 0)
    result.exec_per_s = stats.get("average_exec_per_sec", 0)
    coverage = _COV.findall(output)
    if coverage:
        result.cov, result.ft = (int(v) for v in coverage[-1])


def fuzz_command(target: str, corpus: Path, artifacts: Path, *, runs: int | None, seconds: float | None,
                 max_len: int, nice: bool = True) -> list[str]:
    """The command line that fuzzes ``target`` on ``corpus`` (each input also counts seeds)."""
    command = [sys.executable, "-m", "tests.fuzz.fuzz_one", target, f"-artifact_prefix={artifacts}/",
               f"-timeout={TIMEOUT_S}", f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={max_len}",
               "-print_final_stats=1", "-seed=1" if runs is not None else "-seed=0"]
    if runs is not None:
        command.append(f"-runs={runs}")
    if seconds is not None:
        command.append(f"-max_total_time={max(1, int(seconds))}")
    command.append(str(corpus))
    return (["nice", "-n", "19"] if nice and shutil.which("nice") else []) + command


def run_target(target: str, *, runs: int | None, seconds: float | None, findings_dir: Path | None,
               nice: bool = True) -> Result:
    """Fuzz one target in a subprocess; crash/timeout/OOM inputs are its findings."""
    from .corpus import write_corpus
    from .targets import TARGETS

    result = Result(target)
    with tempfile.TemporaryDirectory(prefix=f"sottovoce-fuzz-{target}-") as tmp:
        corpus, artifacts = Path(tmp) / "corpus", Path(tmp) / "artifacts"
        artifacts.mkdir()
        result.seeds = write_corpus(target, corpus)
        command = fuzz_command(target, corpus, artifacts, runs=runs, seconds=seconds,
                               max_len=TARGETS[target].max_len, nice=nice)
        started = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
        process = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, errors="replace",
                                 check=False, timeout=(seconds or 0) + 600 if seconds else None)
        result.seconds = time.monotonic() - started
        output = process.stdout + process.stderr
        parse_output(result, output)
        if not result.exec_per_s and result.seconds > 0:  # libFuzzer says 0 for runs shorter than a second
            result.exec_per_s = int(result.inputs / result.seconds)
        result.returncode = process.returncode
        result.log_tail = "\n".join(output.splitlines()[-40:])
        for artifact in sorted(artifacts.iterdir()):
            if findings_dir is None:
                result.findings.append(artifact)
                continue
            keep = findings_dir / target
            keep.mkdir(parents=True, exist_ok=True)
            result.findings.append(Path(shutil.copy2(artifact, keep / artifact.name)))
    return result


def format_table(results: Sequence[Result]) -> str:
    """The per-target table and a total line."""
    lines = [f"{'target':<18} {'inputs':>10} {'exec/s':>8} {'cov':>6} {'ft':>7} {'seeds':>6} {'time s':>7}  findings"]
    for r in results:
        found = ", ".join(p.name for p in r.findings) or ("0" if r.returncode == 0 else f"exit {r.returncode}")
        lines.append(f"{r.target:<18} {r.inputs:>10} {r.exec_per_s:>8} {r.cov:>6} {r.ft:>7} {r.seeds:>6} "
                     f"{r.seconds:>7.1f}  {found}")
    total_findings = sum(len(r.findings) + (1 if r.returncode and not r.findings else 0) for r in results)
    lines.append(f"TOTAL {len(results)} targets, {sum(r.inputs for r in results)} inputs executed, "
                 f"{total_findings} findings")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from .targets import TARGETS

    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.split("\n\n")[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds-per-target", type=float, help="fuzz each target this long (default 30)")
    budget.add_argument("--runs", type=int, help="execute this many inputs per target (seeds included)")
    parser.add_argument("--targets", help=f"comma-separated subset of: {','.join(TARGETS)}")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time (default 1)")
    parser.add_argument("--findings", type=Path, default=FINDINGS, help=f"where finding inputs go ({FINDINGS})")
    parser.add_argument("--no-nice", action="store_true", help="do not run the targets under nice -n 19")
    args = parser.parse_args(argv)
    names = args.targets.split(",") if args.targets else list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown targets: {', '.join(unknown)}")
    seconds = None if args.runs is not None else (args.seconds_per_target or 30.0)

    def one(name: str) -> Result:
        result = run_target(name, runs=args.runs, seconds=seconds, findings_dir=args.findings,
                            nice=not args.no_nice)
        status = "ok" if result.ok else f"FINDINGS: {', '.join(str(p) for p in result.findings) or result.returncode}"
        print(f"{name}: {result.inputs} inputs, {result.exec_per_s} exec/s, cov {result.cov} ft {result.ft}: "
              f"{status}", flush=True)
        if not result.ok:
            print(result.log_tail, flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(one, names))
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
