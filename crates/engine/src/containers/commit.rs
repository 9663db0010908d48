//! Placeholder until the real module lands.
