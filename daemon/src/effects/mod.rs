//! What the daemon does to the world outside its state: the audit log, process signals and the
//! /proc scan, the notify hook, notices on terminals.

pub mod audit;
pub mod notify;
pub mod procs;
pub mod wall;
