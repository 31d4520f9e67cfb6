//! The calls bistro makes, built dynamically against the runtime metadata,
//! and the transaction parameters for signing them.
//!
//! - `SubtensorModule.set_weights(netuid, dests, weights, version_key)`
//! - `SubtensorModule.commit_timelocked_mechanism_weights(netuid, mecid,
//!   commit, reveal_round, commit_reveal_version)` or, on runtimes without
//!   it, `commit_timelocked_weights` (the same without `mecid`)
//! - `Commitments.set_commitment(netuid, info: CommitmentInfo { fields })`,
//!   where each field is a `Data` variant: `Raw0..Raw128` hold that many
//!   bytes, `BigRaw` up to 512.
//!
//! The argument values are `scale_value::Value`s that `subxt` encodes with
//! the type information of the metadata it has (the node's live metadata
//! when online), so a runtime upgrade that keeps names and shapes needs no
//! change here.

use subxt::Metadata;
use subxt::config::{DefaultExtrinsicParams, DefaultExtrinsicParamsBuilder, SubstrateConfig};
use subxt::dynamic::Value;
use subxt::ext::scale_value::{Composite, Primitive, ValueDef};

use crate::chain::MAX_COMMITMENT_BYTES;
use crate::error::{Error, Result};

/// A dynamic call with `Value` arguments.
pub(crate) type Call = subxt::tx::DynamicPayload<Vec<Value>>;

/// The bytes one `Data::RawN` field holds at most.
pub const RAW_FIELD_BYTES: usize = 128;
/// The fields a `CommitmentInfo` holds at most (`BoundedVec<Data, 3>`).
pub const MAX_COMMITMENT_FIELDS: usize = 3;

/// The transaction extension subtensor uses in place of
/// `ChargeTransactionPayment` in some runtimes; it carries the same
/// compact tip, so bistro gives it a tip of zero.
pub const CHARGE_TX_PAYMENT_WRAPPER: &str = "ChargeTransactionPaymentWrapper";

/// `SubtensorModule.set_weights`.
pub(crate) fn set_weights(netuid: u16, uids: &[u16], weights: &[u16], version_key: u64) -> Call {
    subxt::dynamic::tx(
        "SubtensorModule",
        "set_weights",
        vec![
            Value::u128(u128::from(netuid)),
            Value::unnamed_composite(uids.iter().map(|&u| Value::u128(u128::from(u)))),
            Value::unnamed_composite(weights.iter().map(|&w| Value::u128(u128::from(w)))),
            Value::u128(u128::from(version_key)),
        ],
    )
}

/// A timelocked weights commit: `SubtensorModule.commit_timelocked_mechanism_weights(
/// netuid, mecid 0, commit, reveal_round, commit_reveal_version)` (call 118
/// on the recorded runtime, what both Python SDKs send) when the runtime has
/// it, else `commit_timelocked_weights(netuid, commit, reveal_round,
/// commit_reveal_version)` (call 113).
pub(crate) fn commit_timelocked_weights(
    mechanism_call: bool,
    netuid: u16,
    commit: &[u8],
    reveal_round: u64,
    version: u16,
) -> Call {
    let mut args = vec![Value::u128(u128::from(netuid))];
    if mechanism_call {
        args.push(Value::u128(0)); // mecid: the subnet's main mechanism
    }
    args.push(Value::from_bytes(commit));
    args.push(Value::u128(u128::from(reveal_round)));
    args.push(Value::u128(u128::from(version)));
    let name = if mechanism_call {
        COMMIT_MECHANISM_CALL
    } else {
        COMMIT_CALL
    };
    subxt::dynamic::tx("SubtensorModule", name, args)
}

/// The call a runtime with mechanisms uses for timelocked commits (118).
pub const COMMIT_MECHANISM_CALL: &str = "commit_timelocked_mechanism_weights";
/// The older timelocked commit call (113).
pub const COMMIT_CALL: &str = "commit_timelocked_weights";

/// Whether `SubtensorModule` has the call `name` in this runtime.
pub(crate) fn has_call(metadata: &Metadata, name: &str) -> bool {
    metadata
        .pallet_by_name("SubtensorModule")
        .is_some_and(|p| p.call_variant_by_name(name).is_some())
}

/// Whether `pallet` has the storage entry `name` in this runtime.
pub(crate) fn has_storage(metadata: &Metadata, pallet: &str, name: &str) -> bool {
    metadata
        .pallet_by_name(pallet)
        .and_then(|p| p.storage())
        .is_some_and(|s| s.entry_by_name(name).is_some())
}

/// `Commitments.set_commitment` publishing `data` (see [`commitment_fields`]).
pub(crate) fn set_commitment(netuid: u16, data: &[u8]) -> Result<Call> {
    let info =
        Value::named_composite([("fields", Value::unnamed_composite(commitment_fields(data)?))]);
    Ok(subxt::dynamic::tx(
        "Commitments",
        "set_commitment",
        vec![Value::u128(u128::from(netuid)), info],
    ))
}

/// The `Data` fields that carry `data`: one `RawN` field up to 128 bytes;
/// up to three 128-byte `RawN` fields up to 384 bytes (readers concatenate
/// `Raw` fields, as the Python SDK does); one `BigRaw` field up to 512.
pub fn commitment_fields(data: &[u8]) -> Result<Vec<Value>> {
    if data.len() > MAX_COMMITMENT_BYTES {
        return Err(Error::limit(
            "commitment bytes",
            MAX_COMMITMENT_BYTES as u64,
            data.len() as u64,
        ));
    }
    if data.len() <= RAW_FIELD_BYTES * MAX_COMMITMENT_FIELDS {
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(RAW_FIELD_BYTES).collect()
        };
        return Ok(chunks
            .into_iter()
            .map(|c| Value::unnamed_variant(format!("Raw{}", c.len()), [Value::from_bytes(c)]))
            .collect());
    }
    Ok(vec![Value::unnamed_variant(
        "BigRaw",
        [Value::from_bytes(data)],
    )])
}

/// The bytes a decoded `Registration { info: { fields } }` carries: the
/// `Raw*` and `BigRaw` fields concatenated in order (other variants, such as
/// hashes or timelocked data, are skipped).
pub(crate) fn commitment_bytes(registration: &Value) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::Chain(format!("unexpected commitment record: {why}"));
    let info = field(registration, "info").ok_or_else(|| bad("no `info`"))?;
    let fields = field(info, "fields").ok_or_else(|| bad("no `fields`"))?;
    let items = unwrap_newtypes(fields);
    let ValueDef::Composite(list) = &items.value else {
        return Err(bad("`fields` is not a list"));
    };
    let mut out = Vec::new();
    for item in list.values() {
        let ValueDef::Variant(variant) = &item.value else {
            return Err(bad("a field is not a `Data` variant"));
        };
        if !(variant.name.starts_with("Raw") || variant.name == "BigRaw") {
            continue;
        }
        let payload = variant
            .values
            .values()
            .next()
            .ok_or_else(|| bad("a `Raw` field without bytes"))?;
        out.extend(bytes_of(payload).ok_or_else(|| bad("a `Raw` field that is not bytes"))?);
        if out.len() > MAX_COMMITMENT_BYTES * 2 {
            return Err(bad("longer than any commitment"));
        }
    }
    Ok(out)
}

/// The named field `name` of a composite value.
pub(super) fn field<'a, C>(value: &'a Value<C>, name: &str) -> Option<&'a Value<C>> {
    match &unwrap_newtypes(value).value {
        ValueDef::Composite(Composite::Named(fields)) => {
            fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }
        _ => None,
    }
}

/// Looks through single-field unnamed composites (`BoundedVec(Vec<_>)`).
pub(super) fn unwrap_newtypes<C>(mut value: &Value<C>) -> &Value<C> {
    for _ in 0..8 {
        match &value.value {
            ValueDef::Composite(Composite::Unnamed(inner))
                if inner.len() == 1 && matches!(inner[0].value, ValueDef::Composite(_)) =>
            {
                value = &inner[0]
            }
            _ => break,
        }
    }
    value
}

/// The bytes of a value that is a sequence or array of `u8` primitives.
pub(super) fn bytes_of<C>(value: &Value<C>) -> Option<Vec<u8>> {
    let value = unwrap_newtypes(value);
    let ValueDef::Composite(c) = &value.value else {
        return None;
    };
    c.values()
        .map(|v| match &v.value {
            ValueDef::Primitive(Primitive::U128(b)) => u8::try_from(*b).ok(),
            _ => None,
        })
        .collect()
}

/// Finishes transaction parameters: `builder` sets mortality and maybe a
/// nonce (online, `subxt` fills in the nonce and the block mortality
/// starts at); this adds a tip of zero and a value for every extension of
/// this runtime that `subxt` does not know but that carries data (today only
/// `ChargeTransactionPaymentWrapper`).
pub(crate) fn tx_params(
    metadata: &Metadata,
    builder: DefaultExtrinsicParamsBuilder<SubstrateConfig>,
) -> DefaultExtrinsicParams<SubstrateConfig> {
    let mut builder = builder.tip(0);
    if has_extension(metadata, CHARGE_TX_PAYMENT_WRAPPER) {
        // The wrapper's value is `ChargeTransactionPayment(Compact<u64>)`;
        // scale-value encodes the tip through the newtype.
        builder = builder.custom_extension(CHARGE_TX_PAYMENT_WRAPPER, Value::u128(0));
    }
    builder.build()
}

/// Whether the runtime declares the transaction extension `name`.
pub(crate) fn has_extension(metadata: &Metadata, name: &str) -> bool {
    let ext = metadata.extrinsic();
    (0..=ext.transaction_extension_version_to_use_for_encoding()).any(|v| {
        ext.transaction_extensions_by_version(v)
            .is_some_and(|mut list| list.any(|e| e.identifier() == name))
    })
}
