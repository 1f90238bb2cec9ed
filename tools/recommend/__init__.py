"""Recommendations: ranking, reference baselines, the signals the hybrid blends, the hybrid recommender, and its evaluation."""
