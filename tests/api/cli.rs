//! The operator CLI against a running relay.
