//! The table of Information Elements.
