//! Just-in-time leases as data: the model, the pure transition rules, and the durable journal
//! with the reserve that keeps endings writable on a full disk.

#[cfg(test)]
mod full_disk_tests;
pub mod journal;
pub mod model;
pub mod reserve;
pub mod rules;
