//! Page sources: turning a page id into token sequences.

mod batch;

pub use batch::Batch;
