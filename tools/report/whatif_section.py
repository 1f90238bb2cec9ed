"""Each segment card's "what would move them" line: the smallest change taking its most typical member into the nearest
other top-level segment, searched at report time with the run's saved model (tools/segment/whatif.py), one search per card."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from tools.core.errors import SegscopeError

REPORT_MAX_CHANGES = 6  # a card's line is a pointer, not an exhaustive search: the bound keeps the report quick


def whatif_lines(workspace, segment_ids: Iterable[int], min_segment_size: int = 10) -> dict[int, str]:
    """segment id -> the card's line ({} when the run cannot be searched: no saved model, text-only data)."""
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
