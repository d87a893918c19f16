//! Crash and signal tests against the real binary (see the module docs inside).
