"""Which tool a request is for: similarity to example phrasings, nudged by telling words.

The router first replaces what it resolved in the workspace with placeholders ("why is
u00042 in their segment?" -> "why is this user in their segment?"), so the examples
below are about the shape of a request, never about one workspace's ids or names.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager

import numpy as np

EXAMPLES: dict[str, list[str]] = {
    "segment_users": [
        "split my customers into groups", "segment the users", "cluster my users into 5 segments", "group customers by behaviour",
        "find segments in my data", "re-run the segmentation with k=4", "divide users into clusters", "run segmentation with alpha 0.3",
        "create customer segments", "can you segment my audience", "make 6 groups of shoppers", "redo the clustering using hdbscan",
        "discover natural clusters among our customers", "resegment with a different number of groups", "cluster them again",
        "partition the customer base into cohorts", "try a different k", "segment based on behaviour only", "recluster everything",
        "split into 4 segments", "segment them into 3 clusters", "regroup the users", "group the users based on their reviews",
        "find groups in the user base", "identify clusters in the data",
    ],
    "list_segments": [
        "list the segments", "show me the segments", "what segments do we have", "what groups are there",
        "give me an overview of the clusters", "how many segments are there", "show all groups with their sizes",
        "summarise the segments", "which customer groups exist", "the segment table", "what are the segments called", "list them", "show them all",
        "which clusters did the segmentation find", "show every segment", "what came out of the clustering",
    ],
    "describe_segment": [
        "what is special about this segment", "describe this segment", "tell me about this segment", "what defines this segment",
        "who are the people in this segment", "details of this segment", "what makes this segment different", "characterise this segment",
        "explain this segment to me", "profile of this segment", "what are they like in this segment", "what do this segment have in common",
        "summarise this segment", "deep dive into this segment", "key traits of this segment", "who is in this segment",
        "what are the top items of this segment", "what does this segment buy",
    ],
    "compare_segments": [
        "compare this segment and this segment", "how does this segment differ from this segment", "this segment vs this segment",
        "what is the difference between this segment and this segment", "contrast this segment with this segment",
        "compare this segment with this segment side by side", "how different are this segment and this segment",
    ],
    "explain_user_segment": [
        "why is this user in their segment", "why was this user put in this group", "which segment is this user in and why",
        "explain the segment of this user", "what group does this user belong to", "why does this user belong to this segment",
        "which cluster does this user fall into", "what kind of customer is this user", "tell me about this user",
        "why is this user where they are", "segment membership of this user", "what does this user look like",
        "describe this user", "profile of this user", "who is this user",
    ],
    "find_users": [
        "find users who love gardening", "show me customers interested in electronics", "who buys running shoes",
        "find people who write long reviews about books", "which customers like horror movies", "users interested in cooking",
        "search for shoppers who bought baby products recently", "people who are into hiking", "customers who like board games",
        "who likes fantasy novels", "shoppers who care about skincare", "find fans of science fiction",
    ],
    "find_items": [
        "find items like wireless headphones", "search products about camping", "which movies are about space",
        "show me products similar to a yoga mat", "look for items matching kitchen knives", "find books about history",
        "do we sell anything for the garden", "search the catalogue for toys", "which products mention organic",
        "items for someone who likes running", "films about robots",
    ],
    "recommend_items": [
        "recommend something for this user", "what should we suggest to this user", "top 5 recommendations for this user",
        "recommend items for this user and tell me why", "what would this user like", "suggest products to this user",
        "give this user some recommendations", "next best offer for this user", "what should we show this user",
        "what will this user buy next", "what else could we sell to this user", "personalised picks for this user",
        "what should this user watch next", "product ideas for this user", "cross-sell for this user",
        "what might this user want", "what is this user likely to buy",
    ],
    "explain_recommendation": [
        "why recommend this item to this user", "explain why this user should get this item", "why is this item recommended for this user",
        "justify recommending this item to this user", "what is the evidence for recommending this item to this user",
        "why would this user like this item", "is this item a good pick for this user", "why this item for this user",
    ],
    "rank_users": [
        "which customers are about to churn", "who is at risk of leaving", "show me lapsed users", "who are the top spenders",
        "most valuable customers", "most active users", "newest customers", "how many users have not been active for 90 days",
        "how many customers spent more than 500", "top 20 spenders in this segment", "rank users by spend",
        "who has not come back in a long time", "least active customers", "who rates the highest", "dormant users",
        "customers with at least 5 purchases", "who signed up recently", "heaviest users", "who is slipping away",
    ],
    "segment_drift": [
        "who moved from this segment to this segment", "who moved from this segment to this segment since last month",
        "how did the segments change since last month", "which users switched segments", "show the migration between segments",
        "segment drift over the last 90 days", "how have the segments changed", "what changed since the last run",
        "who left this segment this quarter", "did a new segment appear", "how many customers moved into this segment",
        "compare with the previous segmentation", "who went from this segment to this segment", "churn between segments over time",
    ],
    "audit_segments": [
        "is any segment a proxy for gender", "audit the segments for fairness", "check the segments for bias", "are the segments fair",
        "run a fairness audit", "do the segments discriminate by age", "does any segment skew towards women", "are some groups over-represented in a segment",
        "are recommendations worse for women", "do older users get worse recommendations", "is the recommender biased by occupation",
        "check for demographic bias", "are the segments just gender in disguise", "bias audit of the clusters", "do the segments track age or occupation",
        "is the segmentation fair to every group", "does a segment stand in for a protected attribute", "who gets more popular items recommended",
    ],
    "export_segment": [
        "export the members of segment 3 as csv", "export this segment to a csv file", "give me a csv of the user ids in that segment",
        "download the list of users in the biggest segment", "save segment 2's members as parquet", "export all users with their segment",
        "I need the lapsed buyers as a list for our email tool", "send the loyal segment to the CRM", "sync this cohort to braze",
        "export who entered or left the segment since the last run", "a jsonl file of the book reviewers", "dump the cohort to a file",
        "push the high spenders audience to facebook ads", "who joined or left this segment since last time, as a csv",
        "send this segment to our email tool", "upload this segment to the ad platform",
    ],
    "what_would_move": [
        "what would move this user into this segment", "what would it take for this user to join this segment",
        "how could this user get into this segment", "what would this user need to do to be in this segment",
        "what change would put this user in this segment", "how can this user become part of this segment",
        "what would make this user switch to this segment", "what does this user have to change to end up in this segment",
    ],
    "write_report": [
        "write a report", "make a shareable report", "export the segments as html", "create a markdown report",
        "generate a report for this segment", "produce a summary document of the segments", "save a report I can share",
        "something I can send to my manager", "a document for stakeholders", "report on this segment", "a report about this segment",
        "a slide deck for the execs", "a doc to share with the team", "a write-up of this segment for my boss",
        "a one-pager on this segment", "I need a document about this segment",
    ],
    "load_data": [
        "what data is loaded", "summarise the data", "describe the dataset", "how many users and events are there",
        "load the file data/events.csv", "what is in my data", "which dataset are we using", "what event types are there",
    ],
    "help": ["help", "what can you do", "how do I use this", "list the commands", "what can I ask", "what is this tool for"],
}

KEYWORDS: dict[str, tuple[str, ...]] = {
    "segment_users": (" split ", " cluster ", "segment my", "segment the", "segmentation", "group my", "groups of", "into groups", "into segments",
                      "into clusters", "into cohorts", "into buckets", "re-run", "rerun",
                      "redo", "recluster", "re-cluster", "resegment", "regroup", "re-group", "natural", "clusters in", "groups in", "segments in", "user base", "customer base", "k=", "hdbscan", "agglomerative", "kmeans", "k-means", "alpha", "groupings"),
    "list_segments": ("list the segment", "the segments", "all segments", "all the groups", "segments?", "each segment", "each cluster", "each group",
                      "show the clusters", "show the groups", "show segments", "show clusters", "show groups", "the clusters", "the groups",
                      "list all", "with sizes", "with their sizes", "every segment", "every cluster", "every group", "came out of"),
    "compare_segments": ("compare", " vs ", " versus ", "differ", "difference", "contrast", "side by side", "separates", "compared"),
    "recommend_items": ("recommend", "suggest", "would like", "next best", " recs ", "picks", "upsell", "cross-sell", "show this user", "sell to", "watch next", "buy next",
                        "might want", "would want", "likely to buy", "likely to want", "want next"),
    "explain_recommendation": ("why recommend", "why is this item", "evidence for", "justify", "good pick", "reason for recommending", "reasoning behind"),
    "segment_drift": ("moved from", "move from", "moved to", "moved into", "migrat", "drift", "switched", "changed since", "since last",
                      "since the last", "went from", "over time", "previous run", "previous segmentation"),
    "audit_segments": ("fair", "bias", "proxy", "proxies", "discriminat", "audit", "demographic", "over-represent", "under-represent",
                       "gender", "protected", "sensitive attribute", "skew", "disguise", "stand in for", "stand-in"),
    "export_segment": (" csv", " parquet", "jsonl", "json lines", "user ids", "list of users", "member list", "list of members",
                       "the members", "cohort", "audience", " crm", "mailchimp", "braze", "klaviyo", "hubspot", "salesforce", "ads ",
                       "email tool", "e-mail tool", "sync", "entered or left", "joined or left"),
    "what_would_move": ("what would move", "would it take", "what would make", "need to do", "have to do", "have to change",
                        "need to change", "get into", "end up in", "become a", "become one", "turn into"),
    "write_report": ("report", "export", "shareable", "document", " doc ", " docs ", "write up", "write-up", "send to my", "stakeholder", "summary file",
                     " deck ", "slides", "one-pager", "one pager", " pdf ", "i can share", "to share", "leadership", "executive summary", "for my boss"),
    "find_users": ("who buys", "who likes", "who loves", "interested in", "into ", " fans", " lovers", "who love", "who like", "care about"),
    "find_items": ("find items", "find products", "search products", "similar to", "catalog", "do we sell", "do we have", "do we carry", "do we stock",
                   "items about", "items like", "products like"),
    "explain_user_segment": ("belong", "in their segment", "describe this user", "profile of this user", "this user's profile", "who is this user",
                             "about this user", "is this user like", "kind of customer", "kind of shopper", "kind of user", "kind of buyer",
                             "kind of viewer", "kind of person", "type of customer", "type of shopper", "type of user",
                             "which segment is this user", "what segment is this user", "where does this user", "segment of this user", "this user's segment"),
    "describe_segment": ("describe", "characteri", "profile", "what defines", "what makes", "special about", "deep dive", "key traits",
                         "tell me about", "what are they like", "story with", "sum up"),
    "load_data": ("dataset", "the data", "my data", "loaded", "event types", ".csv", ".parquet", "which file", "catalogue?"),
    "help": ("help", "what can you do", "commands"),
}

MARGIN = 0.03  # two intents closer than this are ambiguous
_FAIRNESS = re.compile(r"\b(?:fair\w*|unfair\w*|bias\w*|prox(?:y|ies)|skew\w*|discriminat\w*|(?:over|under)-?represent\w*|stand-?in|disguise|demographic\w*)\b")
# Drift is change over time: a request with no word of change, movement or time ("what segments did you find") is not one.
_CHANGE = re.compile(r"\b(?:chang\w*|mov(?:e|ed|es|ing)|migrat\w*|drift\w*|switch\w*|shift\w*|went|left|leav\w*|join\w*|appear\w*"
                     r"|emerg\w*|since|over time|previous|earlier|before|after|then|now|anymore|\d+ ?d|\d+ ?(?:days?|weeks?|months?)"
                     r"|(?:last|this|past|next) (?:day|week|month|quarter|year|run|segmentation)|quarter\w*|monthly|weekly)\b")
# A document asked for ("a write-up", "a one-pager"), and members handed to another system ("send … to our email tool").
_DOCUMENT = re.compile(r"\b(?:report|write-?up|document|doc|docs|deck|slides|one-?pager|pdf|html|markdown)\b")
_HAND_TO = re.compile(r"\b(?:send|push|sync|upload|ship|hand)\b(?:\s+\S+){0,6}?\s+(?:to|into)\b")
_ATTRIBUTE = re.compile(r"\b(?:genders?|sex|wom[ae]n|m[ae]n|females?|males?|ages?|older|younger|old|young|occupations?|jobs?|countr(?:y|ies)|race|ethnicit\w*|religions?|incomes?)\b")


@contextmanager
def one_thread():
    """One torch thread while one short request is embedded: splitting a 1×384 encode over cores only adds
    hand-off waits, and on a busy machine those waits cost more than the encode itself (measured 40 vs 200+ ms)."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class IntentScorer:
    """Scores every intent for a (placeholdered) request; ``embed`` turns texts into L2-normalised vectors."""

    def __init__(self, embed) -> None:
        self.embed = embed
        self._intents: list[str] = []
        self._matrix: np.ndarray | None = None

    def _bank(self) -> np.ndarray:
        if self._matrix is None:
            texts: list[str] = []
            for intent, examples in EXAMPLES.items():
                texts += examples
                self._intents += [intent] * len(examples)
            self._matrix = np.asarray(self.embed(texts), dtype=np.float32)
        return self._matrix

    def similarity(self, text: str) -> dict[str, float]:
        bank = self._bank()
        with one_thread():
            query = np.asarray(self.embed([text]), dtype=np.float32)[0]
        best: dict[str, float] = {}
        for intent, s in zip(self._intents, bank @ query):
            best[intent] = max(best.get(intent, -1.0), float(s))
        return best

    def scores(self, masked: str, signals: dict[str, bool]) -> dict[str, float]:
        """Similarity plus nudges from telling words and from what the request names (``signals``)."""
        best = self.similarity(masked)
        low = " " + " ".join(masked.lower().split()) + " "
        for intent, words in KEYWORDS.items():
            if any(w in low for w in words):
                best[intent] += 0.1
        if re.search(r"(?<![\w./])(?:csv|parquet|jsonl|json lines)\b", low) and not re.search(r"\b(?:html|markdown|md|report)\b", low):
            best["export_segment"] += 0.2  # a file of members, not a document about them
            for answered_in_chat in ("segment_drift", "describe_segment", "list_segments"):
                best[answered_in_chat] -= 0.1
        user, item, n_seg = signals.get("user"), signals.get("item"), int(signals.get("segments", 0))
        if user and item:
            best["explain_recommendation"] += 0.2
        elif user and re.search(r"\b(segment|group|cluster|belong|fit)", low):
            best["explain_user_segment"] += 0.15
        elif user:
            best["recommend_items"] += 0.05
            if not signals.get("item_words") and re.search(r"\b(recommend\w*|suggest\w*|recs|picks?|upsell|cross-sell|next best)\b", low):
                best["recommend_items"] += 0.1  # "u00042 recs + why": the recommendations, however much "why" sounds like a segment question
        if user:
            for intent in ("list_segments", "describe_segment", "segment_users", "find_users", "find_items", "load_data", "rank_users"):
                best[intent] -= 0.15
        if n_seg == 1 and not user:
            best["describe_segment"] += 0.1
            best["list_segments"] -= 0.15
            best["segment_users"] -= 0.1
        elif n_seg >= 2:
            best["compare_segments"] += 0.15
            best["segment_users"] -= 0.1
        document = _DOCUMENT.search(low)
        if _HAND_TO.search(low) and not document and not user:
            best["export_segment"] += 0.15  # "send the toy buyers to our email tool": the members, handed to a system that acts
        if document and n_seg == 1 and not user:
            best["write_report"] += 0.05  # "a write-up of segment 3": a document about it, not the answer in chat
        if signals.get("behaviour"):
            best["rank_users"] += 0.25
            best["find_users"] -= 0.05
        else:
            best["rank_users"] -= 0.1  # a ranking needs a measure to rank by
        if (n_seg == 0 and not user and not signals.get("run_params") and re.search(r"\b(segments?|clusters?|groups?)\b", low)
                and re.match(r"^\s*(?:(?:can|could) (?:you|u)\s+|please\s+)?(?:show|list|display|view|see|give)\b", low)):
            best["list_segments"] += 0.1  # "show me every cluster": the clusters there are; a new run is asked with a verb of splitting
            best["segment_users"] -= 0.1
        if (n_seg == 0 and not user and re.search(r"\b(?:find|discover|identify|detect|uncover|build|create|generate|derive|extract|define)\b(?:\s+\S+){0,3}?\s+"
                                                   r"(?:segments|clusters|groups|groupings|cohorts|personas)\b", low)
                and not re.search(r"\b(?:did|have|has|had|were|was|already|existing|current)\b", low)):
            best["segment_users"] += 0.1  # "discover groups in my customers": a run to make; "what groups did you find" lists the last one
            best["list_segments"] -= 0.05
        if n_seg == 0 and not user and re.match(r"^\s*(?:please\s+)?(?:re-?)?(?:segment|cluster)(?![s\w])", low):
            best["segment_users"] += 0.1  # "segment again", "cluster everyone": the verb, where "segments?" asks for the list
        if signals.get("run_params"):  # "into 5 groups", "with hdbscan", "alpha 0.3": a segmentation's parameters
            best["segment_users"] += 0.15
        if not user and not re.search(r"\b(recommend\w*|suggest\w*|recs|picks?|upsell|cross-sell|next best)\b", low):
            best["recommend_items"] -= 0.08  # recommendations are for someone
        if signals.get("taste") and not signals.get("behaviour"):
            best["find_users"] += 0.05
        if not _CHANGE.search(low):
            best["segment_drift"] -= 0.1
        if _FAIRNESS.search(low):  # "skews by age", "over-represents young shoppers": about who is in a group, not a search
            best["audit_segments"] += 0.1 + (0.05 if _ATTRIBUTE.search(low) else 0.0)
        people = re.search(r"\b(users?|customers?|people|shoppers?|buyers?|clients?|members?|audience|who|anyone|viewers?)\b", low)
        things = re.search(r"\b(items?|products?|movies?|films?|books?|articles?|things?|skus?|catalog(ue)?)\b", low)
        if people and not user and not things:
            best["find_users"] += 0.1
            best["find_items"] -= 0.1
        elif people and not user:
            best["find_users"] += 0.05
        if things and not people and not user:
            best["find_items"] += 0.1
            best["find_users"] -= 0.1
        return best
