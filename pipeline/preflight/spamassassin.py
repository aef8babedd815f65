"""Score a message with the local SpamAssassin (`spamassassin -L -t`): no network tests, no Bayes.

Reads the message bytes (piped to the program); writes nothing (-x: no user prefs file; Bayes and
auto-learn off so scores are repeatable). Called by message_checks.check_message.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from .results import CheckResult

INSTALL_HINT = "apt-get install spamassassin"
_DETAILS = re.compile(r"^Content analysis details:\s+\((-?[\d.]+) points?, (-?[\d.]+) required\)", re.M)
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]{2,})\s+(.*)$")


def parse_report(output: str) -> tuple[float, float, list[dict]] | None:
    """(score, required, rules) from `spamassassin -t` output; None when there is no report."""
    found = list(_DETAILS.finditer(output))
    if not found:
        return None
    last = found[-1]
    score, required = float(last.group(1)), float(last.group(2))
    rules: list[dict] = []
    table = output[last.end():].splitlines()
    started = False
    for line in table:
        if line.startswith("----"):
            started = True
            continue
        if not started:
            continue
        if not line.strip():
            if rules:
                break
            continue
        m = _RULE.match(line)
        if m:
            rules.append({"rule": m.group(2), "points": float(m.group(1)), "description": m.group(3).strip()})
        elif rules and line.startswith(" "):
            rules[-1]["description"] += " " + line.strip()  # wrapped description
    return score, required, rules


def check_spamassassin(raw: bytes, program: str = "spamassassin", timeout: float = 60.0) -> CheckResult:
    exe = shutil.which(program)
    if exe is None:
        return CheckResult(
            "spamassassin", "warn", f"spamassassin not installed ({program!r} not found): score not checked",
            f"{INSTALL_HINT} (or set doctor.spamassassin to its path)",
        )
    cmd = [exe, "-L", "-t", "-x", "--cf=use_bayes 0", "--cf=bayes_auto_learn 0"]
    try:
        proc = subprocess.run(cmd, input=raw, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return CheckResult("spamassassin", "warn", f"spamassassin did not finish within {timeout:g}s",
                           "raise doctor.spamassassin_timeout, or run `spamassassin -L -t < FILE` by hand")
    except OSError as exc:
        return CheckResult("spamassassin", "warn", f"could not run {exe}: {exc}", INSTALL_HINT)
    parsed = parse_report(proc.stdout.decode("utf-8", "replace"))
    if parsed is None:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return CheckResult("spamassassin", "warn",
                           f"no report from spamassassin (exit {proc.returncode}): {err[-1] if err else 'no output'}",
                           "run `spamassassin -L -t < FILE` by hand to see what is wrong")
    score, required, rules = parsed
    score = score or 0.0  # SpamAssassin prints -0.0
    scored = sorted((r for r in rules if r["points"] != 0), key=lambda r: -r["points"])
    fired = ", ".join(f"{r['rule']} {r['points']:+g}" for r in scored[:8]) or "no scoring rules"
    data = {"score": score, "required": required, "rules": rules}
    detail = f"score {score:.1f} (spam at {required:.1f}): {fired}"
    worst = "; ".join(f"{r['rule']}: {r['description']}" for r in scored[:3] if r["points"] > 0)
    if score >= required:
        return CheckResult("spamassassin", "fail", detail,
                           f"rewrite what the top rules point at ({worst})", data)
    if score >= required / 2:
        return CheckResult("spamassassin", "warn", detail,
                           f"close to the spam threshold; look at {worst}", data)
    return CheckResult("spamassassin", "pass", detail, data=data)
