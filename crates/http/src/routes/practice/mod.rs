//! Practice routes: clients, catalogue, booking, plans, payments, messages, exports.

pub mod appointments;
pub mod catalog;
pub mod clients;
