//! Practice routes: clients, catalogue, booking, plans, payments, messages, exports.

pub mod appointments;
pub mod catalog;
pub mod clients;
pub mod exports;
pub mod messages;
pub mod payments;
pub mod plans;
pub mod webhooks;
