//! Server (to be written).
