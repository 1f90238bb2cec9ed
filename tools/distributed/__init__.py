"""Running a segmentation past one machine: the same stages as the local engine, on a Ray cluster.

``segscope segment --engine ray`` builds profiles per partition of users and places users on Ray Data
workers, and embeds texts with a pool of embedder actors; every computation is the local engine's own
function (tools/segment/profiles.py, tools/segment/levels.py), called per partition. Ray is imported
only inside these modules, and only when this engine is asked for.
"""
