//! The deadline snapshot: what each uid's bucket held when the validator
//! listed it at the deadline block `b`, before the reveal block `b + D`
//! existed. Only pinned objects are judged, so an upload made after the
//! pages became known is late whatever timestamp the miner's storage
//! server reports (`docs/protocol.md`, "Lateness").

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::identity::PublicKey;
use crate::node::fingerprint::millis;
use crate::storage::ObjectInfo;

/// One uid's newest delta in the round's window at the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// The uid's hotkey when it was listed.
    pub hotkey: PublicKey,
    /// The object's key.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// Its storage timestamp as listed, in milliseconds since the epoch
    /// (compared with the download's, so a replaced object is noticed).
    pub last_modified_ms: u64,
}

impl Pin {
    /// The pin of a listed object.
    pub fn of(hotkey: PublicKey, info: &ObjectInfo) -> Pin {
        Pin {
            hotkey,
            key: info.key.clone(),
            size: info.size,
            last_modified_ms: millis(info.last_modified),
        }
    }

    /// The object as it was listed.
    pub fn info(&self) -> ObjectInfo {
        ObjectInfo {
            key: self.key.clone(),
            size: self.size,
            last_modified: SystemTime::UNIX_EPOCH + Duration::from_millis(self.last_modified_ms),
        }
    }
}

/// The snapshot of one deadline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The deadline.
    pub deadline: u64,
    /// Whether the listing completed before the reveal block existed. A
    /// snapshot taken later (a validator that noticed the deadline late)
    /// cannot tell on-time uploads from late ones: the round then falls back
    /// to storage timestamps, and its records say so.
    pub before_reveal: bool,
    /// The pinned object of every uid that had one.
    pub pins: BTreeMap<u16, Pin>,
}
