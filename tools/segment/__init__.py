"""From users to segments: behaviour features, fused profiles, clustering, and what each segment is made of."""
