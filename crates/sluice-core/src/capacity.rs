//! Capacity snapshots and the fit check (to be written).
