//! Client for a running relay's admin API, used by the CLI's operator commands.
