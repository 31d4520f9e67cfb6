//! The bridge between the model and the [`codec`](crate::codec).
//!
//! - [`build`]: a miner writes `trained − master` for every parameter into a
//!   [`DeltaWriter`](crate::codec::DeltaWriter), with per-tensor encodings and
//!   optional error feedback ([`Residuals`]). The master may be a [`Model`]
//!   or the master's [`Checkpoint`] file (no second model in memory).
//! - [`apply`] / [`apply_with_backup`]: a validator adds a delta (times
//!   `alpha`) to its model in place, after checking every tensor of the delta
//!   against the model (names, shapes, finite values): a delta that does not
//!   fit changes nothing. The returned [`AppliedDelta`] keeps what is needed
//!   to restore the exact previous bits: the old values at the touched indices
//!   of sparse tensors, and for dense tensors a copy of the tensor (memory)
//!   or nothing, when the model's tensor was checked equal to a checkpoint
//!   that [`AppliedDelta::undo`] reads back.
//!
//! Float arithmetic cannot undo an apply (`(w + d) − d` is not always `w`),
//! which is why the old bits are kept.
//!
//! [`Model`]: super::Model
//! [`Checkpoint`]: super::Checkpoint

mod apply;
mod diff;
mod residuals;
mod source;

pub use apply::{AppliedDelta, Backup, apply, apply_permanently, apply_with_backup};
pub use diff::{BuildReport, build};
pub use residuals::Residuals;
pub use source::ParameterSource;
