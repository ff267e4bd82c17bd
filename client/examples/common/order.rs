//! The `Order` record of `schemas/order.avsc`, shared by the two examples.

use serde::{Deserialize, Serialize};

/// The writer and reader schema, from the repository's `schemas/` directory.
pub const ORDER_SCHEMA: &str = include_str!("../../../schemas/order.avsc");

/// An order placed by a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub customer_id: String,
    pub amount_cents: i64,
    pub currency: String,
    /// Milliseconds since the Unix epoch (`timestamp-millis`).
    pub created_at: i64,
}
