//! Delivery: retries, 429s, dead letters, rate limits, restarts.
