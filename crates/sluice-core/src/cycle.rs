//! The scheduling cycle (to be written).
