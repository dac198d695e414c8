//! Just-in-time leases: the model, its durable journal, the pure transition rules, and the
//! /proc scan that makes an ended lease really end.

pub mod journal;
pub mod model;
pub mod notify;
pub mod procs;
pub mod rules;
pub mod sessions;
pub mod wall;
