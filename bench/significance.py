"""Are the traits a run cites statistically real? Counts and an audit of names, descriptions,
explanations and the report against each trait's test (tools/segment/significance.py).

    python -m bench.significance WORKSPACE [--names-from OTHER_WORKSPACE] [--users 150]

For the workspace's current run: how many (segment, feature) tests were made and how many stand
after Benjamini–Hochberg; how many name words and description clauses rest on a trait that failed
its test (each word is mapped back to its feature family through the vocabulary, independently
of the code that chose it); over top-10 recommendations of a sample of users, how many extractive
explanations pass the verifier, how many quote a popularity figure, and how many would have quoted
one below the minimum (the old rule quoted any count above 0); and whether every trait row of the
Markdown report carries an interval. ``--names-from`` audits another workspace's names and
descriptions (a run of the same data and seed by an older segscope) against this run's tests.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

from bench.common import save


def _word_families(word: str) -> list[tuple[str, int, bool]]:
    """(feature family, direction, intensity) a name word can stand for; [] for nouns, size words, keywords."""
    from tools.explain.vocabulary import ADJECTIVES, INTENSITY, SESSION_ADJECTIVES

    word = word.removesuffix("-leaning")
    out = []
    for rules in (ADJECTIVES, SESSION_ADJECTIVES):
        for fam, (up, down, _) in rules.items():
            out += [(fam, +1, False)] if word == up else []
            out += [(fam, -1, False)] if word == down else []
    for base, forms in INTENSITY.items():
        if word in forms:
            out += [(f, d, True) for f, d, _ in _word_families(base)]
    if word.startswith(("Very-", "Mildly-")):
        base = word.split("-", 1)[1]
        out += [(f, d, True) for f, d, _ in _word_families(base[:1].upper() + base[1:])]
    return out


def _cited(rows: list[dict]) -> dict[str, float]:
    return {t["feature"]: t["effect"] for t in rows if t.get("significant") is not False}


def audit_names(segments: list[dict], tested: dict[int, dict]) -> dict:
    """Name words that rest on no significant trait of the right sign (against everyone or the parent)."""
    from tools.explain.vocabulary import short_category
    from tools.explain.wording import feature_family

    bad, words = [], 0
    for s in segments:
        t = tested[s["id"]]
        everyone, parent = _cited(t["profile"]), _cited(t.get("profile_vs_parent") or [])
        keywords = {k.lower() for k in s.get("keywords", [])}
        for word in (s.get("name") or "").split():
            fams = _word_families(word)
            cats = [f for f in (x["feature"] for x in t["profile"]) if f.startswith("category_")
                    and any(word.removeprefix("Non-") in short_category(f[9:], lvl).replace("&", " ").split() for lvl in (0, 1, 2))]
            if not fams and not cats or (not fams and word.lower() in keywords):
                continue
            words += 1
            ok = False
            for fam, sign, intense in fams:
                for f in {*everyone, *parent}:
                    if feature_family(f) != fam:
                        continue
                    ok |= intense and f in parent  # "Long-lapsed": more so than its siblings
                    ok |= any(f in ref and ref[f] * sign > 0 for ref in (everyone, parent))
            for f in cats:
                sign = -1 if word.startswith("Non-") else 1
                ok |= any(f in ref and ref[f] * sign > 0 for ref in (everyone, parent))
            if not ok:
                bad.append(f"{s['id']} {s['name']!r}: {word}")
    return {"name_words_checked": words, "name_words_unsupported": len(bad), "unsupported": bad[:20]}


def audit_descriptions(segments: list[dict], tested: dict[int, dict], voice) -> dict:
    """Description clauses stating the measure of a trait that failed its test (for the comparison the sentence makes)."""
    from tools.explain.wording import fmt_value, measure

    bad, stated = [], 0
    for s in segments:
        t = tested[s["id"]]
        everyone, parent = _cited(t["profile"]), _cited(t.get("profile_vs_parent") or [])
        text = s.get("description") or ""
        sentences = re.split(r"(?<=[.)])\s+(?=[A-Z])", text)
        for trait in t["profile"]:
            f = trait["feature"]
            sig = measure(trait, voice)
            if f.startswith("category_"):
                forms = [f"{f[9:]} ({sig}", f"{fmt_value(trait['segment_value'], 'share')} {f[9:]},"]
            else:
                forms = [f"({sig}"]
            for i, sentence in enumerate(sentences):
                if not any(form in sentence for form in forms):
                    continue
                stated += 1
                against_parent = "than the rest of" in sentence and (i == 0 or "If anything" in sentence)
                if f not in (parent if against_parent else everyone):
                    bad.append(f"{s['id']} {s['name']!r}: {trait['label']} in {sentence!r}")
    return {"description_traits_stated": stated, "description_traits_unsupported": len(bad), "unsupported": bad[:20]}


def audit_explanations(ws: Path, n_users: int) -> dict:
    """Top-10 recommendations' extractive explanations for a sample of users: verified, popularity quoted, below minimum."""
    from assistant.config import load_settings
    from assistant.service import WorkspaceService
    from tools.explain.evidence import phrase_extractive, verify_explanation

    service = WorkspaceService(ws, load_settings())
    ctx = service.explanations
    users = [str(u) for u in service.run.user_ids]
    users = users[:: max(1, len(users) // n_users)][:n_users]
    total = verified = quoted = below = old_below = 0
    for user in users:
        for rec in service.recommender.recommend(user, k=10):
            ev = ctx.build_evidence(user, rec.item_id)
            text = phrase_extractive(ev)
            total += 1
            verified += verify_explanation(text, ev, ctx).ok
            said = f"{ev.segment_item_count} of the {ev.segment_size} people" in text
            quoted += said
            below += said and not ev.popularity_quotable
            old_below += bool(ev.segment_item_count) and not ev.popularity_quotable
    return {"explanations": total, "verified": verified, "popularity_quoted": quoted,
            "popularity_quoted_below_minimum": below, "would_have_quoted_below_minimum_before": old_below}


def audit_report(ws: Path) -> dict:
    """Trait rows of the Markdown report, and how many carry a 95% interval."""
    from assistant.config import load_settings
    from assistant.reporting import build_report
    from assistant.service import WorkspaceService

    out = Path(tempfile.mkdtemp(prefix="segscope-signif-")) / "report.md"
    result = build_report(WorkspaceService(ws, load_settings()), out, n_examples=1)
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and line.count(" | ") == 3
            and not line.startswith(("| Trait", "| #", "| Measure", "| Run")) and not re.match(r"\| \d+ \|", line)]
    with_ci = [r for r in rows if re.search(r"\| [^|]*\([^|]*–[^|]*\) \|", r)]
    return {"report_trait_rows": len(rows), "report_rows_with_interval": len(with_ci), "report_pass_rate": result["pass_rate"]}


def main() -> None:
    from tools.explain.wording import Voice

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--names-from", type=Path, default=None)
    parser.add_argument("--users", type=int, default=150)
    parser.add_argument("--name", default=None, help="results file name (bench/results/significance-NAME.json)")
    args = parser.parse_args()
    summary = json.loads((args.workspace / "segments.json").read_text())
    tested = {s["id"]: s for s in summary["segments"]}
    voice = Voice.of(summary)
    result: dict = {"source": summary["data"]["source"], "trait_tests": summary.get("trait_tests")}
    result["names"] = audit_names(summary["segments"], tested)
    result["descriptions"] = audit_descriptions(summary["segments"], tested, voice)
    if args.names_from is not None:
        other = json.loads((args.names_from / "segments.json").read_text())["segments"]
        if [s["size"] for s in other] != [s["size"] for s in summary["segments"]]:
            raise SystemExit("--names-from must be a run of the same segments (same data, seed and segment sizes)")
        result["names_from"] = {"names": audit_names(other, tested), "descriptions": audit_descriptions(other, tested, voice)}
    if summary["data"].get("n_items"):
        result["explanations"] = audit_explanations(args.workspace, args.users)
    result["report"] = audit_report(args.workspace)
    save(f"significance-{args.name or Path(summary['data']['source']).stem}", result)


if __name__ == "__main__":
    main()
