//! Just-in-time leases as data: the model, the pure transition rules, and the durable journal.

pub mod journal;
pub mod model;
pub mod rules;
