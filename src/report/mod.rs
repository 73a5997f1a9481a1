//! What ward knows about the run, gathered as it happens, for the exit report.

pub mod facts;
