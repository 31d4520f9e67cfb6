//! Unit tests across the codec's parts.

use super::*;

#[test]
fn placeholder() {}
