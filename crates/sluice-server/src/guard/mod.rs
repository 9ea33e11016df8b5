//! Guards between the network and the handlers, kept apart from the routes so that each can
//! be read (and tested) alone:
//! - [`command`]: command jobs are a privilege (`[security.command_jobs]`, and a hook for roles).

pub mod command;
