//! Tray commerce notifications (seed 003). Pure: parse, validate, render; no HTTP, no store.
