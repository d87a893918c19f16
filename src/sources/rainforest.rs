//! Rainforest QA integration events (seed 004). Pure: parse, validate, render; no HTTP, no store.
