"""Each segment card's "what would move them" line: the smallest change taking its most typical member into the nearest
other top-level segment, searched at report time with the run's saved model (tools/segment/whatif.py), one search per card."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from tools.core.errors import SegscopeError

REPORT_MAX_CHANGES = 6  # a card's line is a pointer, not an exhaustive search: the bound keeps the report quick
# Searches stop after this many seconds (each costs 1-5 s on a laptop): the cards left say which command answers them.
REPORT_BUDGET_S = 20.0


def whatif_lines(workspace, segment_ids: Iterable[int], min_segment_size: int = 10, budget_s: float = REPORT_BUDGET_S) -> dict[int, str]:
    """segment id -> the card's line ({} when the run cannot be searched: no saved model, text-only data).

    Cards are searched in the order given until ``budget_s`` has passed; a card past it says so and
    names the `segscope whatif` command that answers it."""
    from tools.segment.assign import load_fitted_run
    from tools.segment.whatif import WhatIfSearch, target_of
    from tools.segment.whatif_events import Evaluator
    from tools.segment.whatif_text import answer

    try:
        fitted = load_fitted_run(workspace)
    except SegscopeError:
        return {}
    run = fitted.run
    if run.summary["data"]["kind"] != "behaviour" or fitted.segments.k_top < 2:
        return {}
    nxt, _ = fitted.own.next_nearest()
    evaluator, lines, done = Evaluator(fitted), {}, {}
    started = time.monotonic()
    for sid in segment_ids:
        seg = run.segment(sid)
        typical = _typical_member(run, seg)
        if typical is None:
            continue
        target = int(nxt[run.row_of(typical)])
        if target < 0:
            continue
        who = "its most typical member" + ("" if seg["size"] < min_segment_size else f" ({typical})")
        name = run.segment(target).get("name") or f"Segment {target}"
        if done and (typical, target) not in done and time.monotonic() - started > budget_s:  # the first card always searched
            lines[sid] = (f"Not searched within this report's {budget_s:.0f} s budget: `segscope whatif --user {typical} --to {target}` "
                          f"says what would move {who} into {target} “{name}”.")
            continue
        try:  # a sub-segment often shares its parent's typical member: one search for both cards
            result = done.get((typical, target)) or answer(
                WhatIfSearch(fitted, typical, target_of(fitted, target), REPORT_MAX_CHANGES, evaluator).run(), fitted)
        except SegscopeError:
            continue
        done[(typical, target)] = result
        if result.reached:
            lines[sid] = (f"For {who}, into the nearest other segment, {target} “{name}”: " + "; ".join(result.changes)
                          + f" ({result.steps} change{'s' if result.steps != 1 else ''}, verified with the saved model).")
        else:
            lines[sid] = f"For {who}, no feasible change within {REPORT_MAX_CHANGES} reaches the nearest other segment, {target} “{name}”. {result.reason}"
    return lines


def _typical_member(run, seg: dict) -> str | None:
    """The representative nearest the segment's centre (its first), else any member."""
    reps = [str(u) for u in seg.get("representative_user_ids") or [] if str(u) in run.user_index]
    if reps:
        return reps[0]
    members = np.flatnonzero((run.labels == seg["id"]) | ((run.top_labels if run.top_labels is not None else run.labels) == seg["id"]))
    return str(run.user_ids[members[0]]) if len(members) else None
