//! Practice routes: clients, catalogue, booking, plans, payments, messages, exports.

pub mod clients;
pub mod exports;
