//! Local backend (to be written).
