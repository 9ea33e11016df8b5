//! Durable job state for sluice (to be written).
