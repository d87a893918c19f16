//! Tray's documented lists: the scope names a notification may be about, and the actions on them.

use serde::{Deserialize, Serialize};

/// Tray scope names, exactly the documented list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeName {
    Product,
    ProductPrice,
    ProductStock,
    Variant,
    VariantPrice,
    VariantStock,
    Order,
    Customer,
}

impl ScopeName {
    /// Every documented scope, in the documentation's order.
    pub const ALL: [ScopeName; 8] = [
        ScopeName::Product,
        ScopeName::ProductPrice,
        ScopeName::ProductStock,
        ScopeName::Variant,
        ScopeName::VariantPrice,
        ScopeName::VariantStock,
        ScopeName::Order,
        ScopeName::Customer,
    ];

    /// The name as Tray sends it, such as `product_price`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeName::Product => "product",
            ScopeName::ProductPrice => "product_price",
            ScopeName::ProductStock => "product_stock",
            ScopeName::Variant => "variant",
            ScopeName::VariantPrice => "variant_price",
            ScopeName::VariantStock => "variant_stock",
            ScopeName::Order => "order",
            ScopeName::Customer => "customer",
        }
    }

    /// The name for people, such as `product price`.
    pub fn label(self) -> &'static str {
        match self {
            ScopeName::Product => "product",
            ScopeName::ProductPrice => "product price",
            ScopeName::ProductStock => "product stock",
            ScopeName::Variant => "variant",
            ScopeName::VariantPrice => "variant price",
            ScopeName::VariantStock => "variant stock",
            ScopeName::Order => "order",
            ScopeName::Customer => "customer",
        }
    }

    /// The scope Tray names `text` (exact, case-sensitive match on the documented names).
    pub fn parse(text: &str) -> Option<ScopeName> {
        ScopeName::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The action Tray reports on a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    Insert,
    Update,
    Delete,
}

impl Act {
    /// Every documented action.
    pub const ALL: [Act; 3] = [Act::Insert, Act::Update, Act::Delete];

    /// The action as Tray sends it.
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Insert => "insert",
            Act::Update => "update",
            Act::Delete => "delete",
        }
    }

    /// What happened, for a message: "created", "updated", "deleted".
    pub fn past_tense(self) -> &'static str {
        match self {
            Act::Insert => "created",
            Act::Update => "updated",
            Act::Delete => "deleted",
        }
    }

    /// The action Tray names `text` (exact, case-sensitive match on the documented names).
    pub fn parse(text: &str) -> Option<Act> {
        Act::ALL.into_iter().find(|a| a.as_str() == text)
    }
}
