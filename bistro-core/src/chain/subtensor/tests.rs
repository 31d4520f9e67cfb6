//! Offline tests against the real main-network metadata
//! (`tests/data/chain/finney-metadata.scale`, a copy of `shared/subtensor/`): the calls, storage entries and
//! runtime API bistro uses exist with the expected types; calls, storage
//! keys and signed transactions encode to bytes derived here by hand from
//! the SCALE and Substrate rules; signatures verify.

use std::sync::Arc;

use scale_info::{PortableRegistry, TypeDef, TypeDefPrimitive};
use subxt::config::substrate::{H256, SpecVersionForRange};
use subxt::config::{DefaultExtrinsicParamsBuilder, SubstrateConfig};
use subxt::ext::codec::{Compact, Decode, Encode};
use subxt::ext::frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
use subxt::ext::scale_encode::EncodeAsType;
use subxt::metadata::StorageHasher;
use subxt::{Metadata, OfflineClient};

use super::calls;
use super::sign::SubxtSigner;
use crate::identity::{Keypair, PublicKey, Signature};

const METADATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/chain/finney-metadata.scale"
);

/// The main network's genesis hash (block 0 of finney).
const FINNEY_GENESIS: &str = "2f0555cc76fc2840a25a6ea3b9637146806f1f44b090c175ffde2a7e5ab36c03";

fn metadata_bytes() -> Vec<u8> {
    std::fs::read(METADATA)
        .expect("the recorded finney metadata is in bistro-core/tests/data/chain")
}

fn metadata() -> Metadata {
    Metadata::decode_from(&metadata_bytes()).unwrap()
}

fn hex32(s: &str) -> [u8; 32] {
    crate::digest::parse_hex_32(s).unwrap()
}

/// //Alice's mini secret key.
fn alice() -> Keypair {
    Keypair::from_seed(hex32(
        "e5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
    ))
    .unwrap()
}

/// `(spec_version, transaction_version)` from the `System.Version` constant.
fn runtime_version(md: &Metadata) -> (u32, u32) {
    let bytes = md
        .pallet_by_name("System")
        .unwrap()
        .constant_by_name("Version")
        .unwrap()
        .value()
        .to_vec();
    type Version = (String, String, u32, u32, u32, Vec<([u8; 8], u32)>, u32, u8);
    let v = Version::decode(&mut &bytes[..]).unwrap();
    (v.3, v.6)
}

fn offline_client(md: Metadata) -> OfflineClient<SubstrateConfig> {
    let (spec, txv) = runtime_version(&md);
    let config = SubstrateConfig::builder()
        .set_genesis_hash(H256(hex32(FINNEY_GENESIS)))
        .set_spec_version_for_block_ranges([SpecVersionForRange {
            block_range: 0..u64::MAX,
            spec_version: spec,
            transaction_version: txv,
        }])
        .set_metadata_for_spec_versions([(spec, Arc::new(md))])
        .build();
    OfflineClient::new_with_config(config)
}

// ---------------------------------------------------------------------------
// Independent hashing for storage keys: xxHash64 (twox) and BLAKE2b-128.

fn xxh64(data: &[u8], seed: u64) -> u64 {
    const P1: u64 = 0x9E3779B185EBCA87;
    const P2: u64 = 0xC2B2AE3D27D4EB4F;
    const P3: u64 = 0x165667B19E3779F9;
    const P4: u64 = 0x85EBCA77C2B2AE63;
    const P5: u64 = 0x27D4EB2F165667C5;
    let round = |acc: u64, lane: u64| {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(31)
            .wrapping_mul(P1)
    };
    let merge = |acc: u64, v: u64| (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4);
    let u64le = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
    let mut rest = data;
    let mut h = if data.len() >= 32 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 32 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, u64le(&rest[i * 8..i * 8 + 8]));
            }
            rest = &rest[32..];
        }
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        for lane in v {
            h = merge(h, lane);
        }
        h
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u64);
    while rest.len() >= 8 {
        h = (h ^ round(0, u64le(&rest[..8])))
            .rotate_left(27)
            .wrapping_mul(P1)
            .wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        let k = u64::from(u32::from_le_bytes(rest[..4].try_into().unwrap()));
        h = (h ^ k.wrapping_mul(P1))
            .rotate_left(23)
            .wrapping_mul(P2)
            .wrapping_add(P3);
        rest = &rest[4..];
    }
    for &b in rest {
        h = (h ^ u64::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

fn twox128(data: &[u8]) -> Vec<u8> {
    let mut out = xxh64(data, 0).to_le_bytes().to_vec();
    out.extend_from_slice(&xxh64(data, 1).to_le_bytes());
    out
}

fn blake2_128(data: &[u8]) -> Vec<u8> {
    use blake2::digest::{Update, VariableOutput};
    let mut h = blake2::Blake2bVar::new(16).unwrap();
    h.update(data);
    let mut out = vec![0u8; 16];
    h.finalize_variable(&mut out).unwrap();
    out
}

fn blake2_256(data: &[u8]) -> [u8; 32] {
    use blake2::digest::{Update, VariableOutput};
    let mut h = blake2::Blake2bVar::new(32).unwrap();
    h.update(data);
    let mut out = [0u8; 32];
    h.finalize_variable(&mut out).unwrap();
    out
}

#[test]
fn independent_hashers_match_known_substrate_keys() {
    // `System.Events`, the best known storage key of every Substrate chain.
    let key = [twox128(b"System"), twox128(b"Events")].concat();
    assert_eq!(
        hex(&key),
        "26aa394eea5630e07c48ae0c9558cef780d41e5e16056765bc8461851072c9d7"
    );
    // xxHash64 test vectors (the reference implementation's).
    assert_eq!(xxh64(b"", 0), 0xEF46DB3751D8E999);
    assert_eq!(xxh64(b"a", 0), 0xD24EC4F1A98C6E5B);
    assert_eq!(
        xxh64(b"Nobody inspects the spammish repetition", 0),
        0xFBCEA83C8A378BF1
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// What bistro uses exists, with the types it expects.

fn primitive(reg: &PortableRegistry, id: u32) -> Option<TypeDefPrimitive> {
    match &reg.resolve(id)?.type_def {
        TypeDef::Primitive(p) => Some(p.clone()),
        // Newtypes such as NetUid are transparent when they have one field.
        TypeDef::Composite(c) if c.fields.len() == 1 => primitive(reg, c.fields[0].ty.id),
        _ => None,
    }
}

fn seq_of(reg: &PortableRegistry, id: u32) -> Option<u32> {
    match &reg.resolve(id)?.type_def {
        TypeDef::Sequence(s) => Some(s.type_param.id),
        TypeDef::Composite(c) if c.fields.len() == 1 => seq_of(reg, c.fields[0].ty.id),
        _ => None,
    }
}

fn is_account_id(reg: &PortableRegistry, id: u32) -> bool {
    reg.resolve(id)
        .is_some_and(|t| t.path.segments.last().map(String::as_str) == Some("AccountId32"))
}

#[test]
fn the_calls_bistro_makes_exist_with_the_expected_arguments() {
    let md = metadata();
    let reg = md.types();
    let st = md.pallet_by_name("SubtensorModule").unwrap();
    assert_eq!(st.call_index(), 7);
    let v = st.call_variant_by_name("set_weights").unwrap();
    let names: Vec<_> = v.fields.iter().map(|f| f.name.clone().unwrap()).collect();
    assert_eq!(names, ["netuid", "dests", "weights", "version_key"]);
    assert_eq!(
        primitive(reg, v.fields[0].ty.id),
        Some(TypeDefPrimitive::U16)
    );
    for f in &v.fields[1..3] {
        let item = seq_of(reg, f.ty.id).unwrap();
        assert_eq!(primitive(reg, item), Some(TypeDefPrimitive::U16));
    }
    assert_eq!(
        primitive(reg, v.fields[3].ty.id),
        Some(TypeDefPrimitive::U64)
    );

    let cm = md.pallet_by_name("Commitments").unwrap();
    assert_eq!(cm.call_index(), 18);
    let v = cm.call_variant_by_name("set_commitment").unwrap();
    let names: Vec<_> = v.fields.iter().map(|f| f.name.clone().unwrap()).collect();
    assert_eq!(names, ["netuid", "info"]);
    // info: CommitmentInfo { fields: BoundedVec<Data> } with Data::RawN = N + 1.
    let info = reg.resolve(v.fields[1].ty.id).unwrap();
    let TypeDef::Composite(c) = &info.type_def else {
        panic!("info")
    };
    assert_eq!(c.fields[0].name.as_deref(), Some("fields"));
    let data = reg
        .resolve(seq_of(reg, c.fields[0].ty.id).unwrap())
        .unwrap();
    let TypeDef::Variant(data) = &data.type_def else {
        panic!("Data")
    };
    for n in [0usize, 1, 5, 64, 128] {
        let raw = data
            .variants
            .iter()
            .find(|x| x.name == format!("Raw{n}"))
            .unwrap();
        assert_eq!(usize::from(raw.index), n + 1);
        let TypeDef::Array(a) = &reg.resolve(raw.fields[0].ty.id).unwrap().type_def else {
            panic!("Raw{n} is not an array")
        };
        assert_eq!(a.len as usize, n);
    }
    assert!(data.variants.iter().any(|x| x.name == "BigRaw"));
}

#[test]
fn the_storage_entries_and_runtime_api_bistro_reads_exist() {
    let md = metadata();
    let reg = md.types();
    let entry = |pallet: &str, name: &str| {
        md.pallet_by_name(pallet)
            .unwrap()
            .storage()
            .unwrap()
            .entry_by_name(name)
            .unwrap_or_else(|| panic!("{pallet}.{name} missing"))
            .clone()
    };
    let e = entry("SubtensorModule", "CommitRevealWeightsEnabled");
    let keys: Vec<_> = e
        .keys()
        .map(|k| (k.hasher, primitive(reg, k.key_id)))
        .collect();
    assert_eq!(
        keys,
        [(StorageHasher::Identity, Some(TypeDefPrimitive::U16))]
    );
    assert_eq!(primitive(reg, e.value_ty()), Some(TypeDefPrimitive::Bool));
    // A subnet without an explicit setting uses commit-reveal: the default is true.
    assert_eq!(e.default_value(), Some(&[1u8][..]));

    let e = entry("SubtensorModule", "Uids");
    let keys: Vec<_> = e.keys().collect();
    assert_eq!(keys[0].hasher, StorageHasher::Identity);
    assert_eq!(keys[1].hasher, StorageHasher::Blake2_128Concat);
    assert!(is_account_id(reg, keys[1].key_id));
    assert_eq!(primitive(reg, e.value_ty()), Some(TypeDefPrimitive::U16));

    let e = entry("Commitments", "CommitmentOf");
    let keys: Vec<_> = e.keys().collect();
    assert_eq!(keys[0].hasher, StorageHasher::Identity);
    assert_eq!(keys[1].hasher, StorageHasher::Twox64Concat);
    assert!(is_account_id(reg, keys[1].key_id));

    // SubnetInfoRuntimeApi.get_metagraph(netuid: u16) -> Option<Metagraph>
    // with every field RawMetagraph reads.
    let api = md
        .runtime_api_trait_by_name("SubnetInfoRuntimeApi")
        .unwrap();
    let m = api.method_by_name("get_metagraph").unwrap();
    let inputs: Vec<_> = m
        .inputs()
        .map(|i| (i.name.to_string(), primitive(reg, i.id)))
        .collect();
    assert_eq!(
        inputs,
        [("netuid".to_string(), Some(TypeDefPrimitive::U16))]
    );
    let TypeDef::Variant(opt) = &reg.resolve(m.output_ty()).unwrap().type_def else {
        panic!("not an Option")
    };
    let some = opt.variants.iter().find(|v| v.name == "Some").unwrap();
    let TypeDef::Composite(mg) = &reg.resolve(some.fields[0].ty.id).unwrap().type_def else {
        panic!("Metagraph")
    };
    let names: Vec<_> = mg.fields.iter().filter_map(|f| f.name.clone()).collect();
    for want in [
        "netuid",
        "block",
        "hotkeys",
        "coldkeys",
        "active",
        "validator_permit",
        "last_update",
        "block_at_registration",
        "total_stake",
    ] {
        assert!(names.iter().any(|n| n == want), "Metagraph.{want} missing");
    }
}

#[test]
fn every_transaction_extension_is_known_or_carries_no_data() {
    // subxt fills in the extensions it knows; bistro supplies the wrapper;
    // any other extension must encode to nothing, or signing would fail.
    let md = metadata();
    let known = [
        "CheckSpecVersion",
        "CheckTxVersion",
        "CheckNonce",
        "CheckGenesis",
        "CheckMortality",
        "ChargeAssetTxPayment",
        "ChargeTransactionPayment",
        "CheckMetadataHash",
        calls::CHARGE_TX_PAYMENT_WRAPPER,
    ];
    let ext = md.extrinsic();
    let version = ext.transaction_extension_version_to_use_for_encoding();
    for e in ext.transaction_extensions_by_version(version).unwrap() {
        if known.contains(&e.identifier()) {
            continue;
        }
        for id in [e.extra_ty(), e.additional_ty()] {
            let encoded = subxt::dynamic::Value::unnamed_composite([])
                .encode_as_type(id, md.types())
                .unwrap_or_else(|err| panic!("{}: {err}", e.identifier()));
            assert!(encoded.is_empty(), "{} carries data", e.identifier());
        }
    }
}

// ---------------------------------------------------------------------------
// Encodings, derived by hand.

fn compact(n: u64) -> Vec<u8> {
    // SCALE compact integers: 2 bits of mode, then the value.
    match n {
        0..=0x3f => vec![(n as u8) << 2],
        0x40..=0x3fff => ((n as u16) << 2 | 1).to_le_bytes().to_vec(),
        0x4000..=0x3fff_ffff => ((n as u32) << 2 | 2).to_le_bytes().to_vec(),
        _ => {
            let bytes = n.to_le_bytes();
            let len = 8 - bytes.iter().rev().take_while(|&&b| b == 0).count();
            let mut out = vec![(((len - 4) as u8) << 2) | 3];
            out.extend_from_slice(&bytes[..len]);
            out
        }
    }
}

#[test]
fn set_weights_encodes_as_derived_by_hand() {
    let client = offline_client(metadata());
    let at = client.at_block(0u64).unwrap();
    let uids = [0u16, 1, 300];
    let weights = [65535u16, 32768, 1];
    let got = at
        .tx()
        .call_data(&calls::set_weights(212, &uids, &weights, 1_000_003))
        .unwrap();
    let mut want = vec![7u8, 0]; // SubtensorModule, set_weights
    want.extend(212u16.to_le_bytes());
    want.extend(compact(3));
    for u in uids {
        want.extend(u.to_le_bytes());
    }
    want.extend(compact(3));
    for w in weights {
        want.extend(w.to_le_bytes());
    }
    want.extend(1_000_003u64.to_le_bytes());
    assert_eq!(hex(&got), hex(&want));
    assert_eq!(compact(300), vec![0xb1, 0x04]); // 300 << 2 | 1, little-endian
}

#[test]
fn set_commitment_encodes_raw_fields_and_bigraw_as_derived_by_hand() {
    let client = offline_client(metadata());
    let at = client.at_block(0u64).unwrap();
    let data: Vec<u8> = (0..512u32).map(|i| (i * 7 + 3) as u8).collect();
    for len in [0usize, 5, 128, 200, 384, 385, 512] {
        let bytes = &data[..len];
        let got = at
            .tx()
            .call_data(&calls::set_commitment(3, bytes).unwrap())
            .unwrap();
        let mut want = vec![18u8, 0]; // Commitments, set_commitment
        want.extend(3u16.to_le_bytes());
        if len <= 384 {
            let chunks: Vec<&[u8]> = if len == 0 {
                vec![bytes]
            } else {
                bytes.chunks(128).collect()
            };
            want.extend(compact(chunks.len() as u64));
            for c in chunks {
                want.push(c.len() as u8 + 1); // Data::RawN has index N + 1
                want.extend_from_slice(c); // [u8; N]: no length prefix
            }
        } else {
            want.extend(compact(1));
            want.push(136); // Data::BigRaw
            want.extend(compact(len as u64));
            want.extend_from_slice(bytes);
        }
        assert_eq!(hex(&got), hex(&want), "{len} bytes");
    }
    assert!(matches!(
        calls::set_commitment(3, &[0u8; 513]),
        Err(crate::Error::LimitExceeded { .. })
    ));
}

#[test]
fn commitments_decode_back_from_the_chain_type() {
    use subxt::dynamic::Value;
    use subxt::ext::scale_decode::DecodeAsType;
    let md = metadata();
    let reg = md.types();
    let ty = md
        .pallet_by_name("Commitments")
        .unwrap()
        .storage()
        .unwrap()
        .entry_by_name("CommitmentOf")
        .unwrap()
        .value_ty();
    let data: Vec<u8> = (0..512u32).map(|i| (i ^ 0x5a) as u8).collect();
    for len in [0usize, 1, 127, 128, 129, 300, 384, 385, 511, 512] {
        let record = Value::named_composite([
            ("deposit", Value::u128(0)),
            ("block", Value::u128(77)),
            (
                "info",
                Value::named_composite([(
                    "fields",
                    Value::unnamed_composite(calls::commitment_fields(&data[..len]).unwrap()),
                )]),
            ),
        ]);
        let encoded = record.encode_as_type(ty, reg).unwrap();
        let decoded = Value::decode_as_type(&mut &encoded[..], ty, reg).unwrap();
        assert_eq!(
            calls::commitment_bytes(&decoded).unwrap(),
            &data[..len],
            "{len}"
        );
    }
    // Hash-only fields are skipped; a record without `info` is an error.
    let record = Value::named_composite([
        ("deposit", Value::u128(0)),
        ("block", Value::u128(1)),
        (
            "info",
            Value::named_composite([(
                "fields",
                Value::unnamed_composite([
                    Value::unnamed_variant("Sha256", [Value::from_bytes([9u8; 32])]),
                    Value::unnamed_variant("Raw3", [Value::from_bytes(b"abc")]),
                ]),
            )]),
        ),
    ]);
    let encoded = record.encode_as_type(ty, reg).unwrap();
    let decoded = Value::decode_as_type(&mut &encoded[..], ty, reg).unwrap();
    assert_eq!(calls::commitment_bytes(&decoded).unwrap(), b"abc");
    assert!(calls::commitment_bytes(&Value::u128(5)).is_err());
}

#[test]
fn storage_keys_match_independently_computed_ones() {
    use subxt::dynamic::storage;
    let client = offline_client(metadata());
    let at = client.at_block(0u64).unwrap();
    let hotkey = alice().public().0;

    let got = at
        .storage()
        .entry(storage::<(u16,), bool>(
            "SubtensorModule",
            "CommitRevealWeightsEnabled",
        ))
        .unwrap()
        .fetch_key((212,))
        .unwrap();
    let want = [
        twox128(b"SubtensorModule"),
        twox128(b"CommitRevealWeightsEnabled"),
        212u16.to_le_bytes().to_vec(),
    ]
    .concat();
    assert_eq!(hex(&got), hex(&want));

    let got = at
        .storage()
        .entry(storage::<(u16, [u8; 32]), u16>("SubtensorModule", "Uids"))
        .unwrap()
        .fetch_key((3, hotkey))
        .unwrap();
    let want = [
        twox128(b"SubtensorModule"),
        twox128(b"Uids"),
        3u16.to_le_bytes().to_vec(),
        blake2_128(&hotkey),
        hotkey.to_vec(),
    ]
    .concat();
    assert_eq!(hex(&got), hex(&want));

    let got = at
        .storage()
        .entry(storage::<(u16, [u8; 32]), subxt::dynamic::Value>(
            "Commitments",
            "CommitmentOf",
        ))
        .unwrap()
        .fetch_key((3, hotkey))
        .unwrap();
    let want = [
        twox128(b"Commitments"),
        twox128(b"CommitmentOf"),
        3u16.to_le_bytes().to_vec(),
        xxh64(&hotkey, 0).to_le_bytes().to_vec(),
        hotkey.to_vec(),
    ]
    .concat();
    assert_eq!(hex(&got), hex(&want));
}

// ---------------------------------------------------------------------------
// Signed transactions.

/// Substrate's mortal era encoding, from its definition.
fn mortal_era(period: u64, current: u64) -> [u8; 2] {
    let period = period.next_power_of_two().clamp(4, 1 << 16);
    let phase = current % period;
    let quantize = (period >> 12).max(1);
    let quantized_phase = phase / quantize * quantize;
    let low = (period.trailing_zeros() - 1).clamp(1, 15) as u16;
    let encoded = low | (((quantized_phase / quantize) as u16) << 4);
    encoded.to_le_bytes()
}

/// Builds and signs `call` offline at block 1000 with nonce 5, mortal for 64
/// blocks, and returns (extrinsic, signer payload as signed).
fn sign_offline(md: Metadata, call: &calls::Call) -> (Vec<u8>, Vec<u8>) {
    let client = offline_client(md);
    let at = client.at_block(1000u64).unwrap();
    let block_hash = H256([0xab; 32]);
    let builder = DefaultExtrinsicParamsBuilder::new()
        .nonce(5)
        .mortal_from_unchecked(64, 1000, block_hash);
    let params = calls::tx_params(at.metadata_ref(), builder);
    let tx = at.tx();
    let mut signable = tx.create_v4_signable_offline(call, params).unwrap();
    let payload = signable.signer_payload().unwrap();
    let pair = alice();
    let signed = signable.sign(&SubxtSigner(&pair)).unwrap();
    (signed.encoded().to_vec(), payload)
}

#[test]
fn signed_set_weights_is_a_v4_extrinsic_that_verifies() {
    let md = metadata();
    let (spec, txv) = runtime_version(&md);
    let call = calls::set_weights(7, &[1, 2], &[65535, 100], 42);
    let call_data = offline_client(metadata())
        .at_block(0u64)
        .unwrap()
        .tx()
        .call_data(&call)
        .unwrap();
    let (ext, payload) = sign_offline(metadata(), &call);

    // Length prefix, then version 4 with the signed bit.
    let mut cursor = &ext[..];
    let len = Compact::<u64>::decode(&mut cursor).unwrap().0 as usize;
    assert_eq!(len, cursor.len());
    assert_eq!(cursor[0], 0x84);
    // MultiAddress::Id(account), MultiSignature::Sr25519(signature).
    let public = alice().public();
    assert_eq!(cursor[1], 0);
    assert_eq!(&cursor[2..34], &public.0);
    assert_eq!(cursor[34], 1);
    let signature = Signature(cursor[35..99].try_into().unwrap());
    // Extra data, in the runtime's order: era, nonce, tip, metadata-hash mode.
    let mut extra = mortal_era(64, 1000).to_vec();
    extra.extend(compact(5));
    extra.extend(compact(0));
    extra.push(0);
    assert_eq!(hex(&cursor[99..99 + extra.len()]), hex(&extra));
    assert_eq!(hex(&cursor[99 + extra.len()..]), hex(&call_data));

    // The signed payload: call, extra, then the implicit data: spec and
    // transaction versions, genesis hash, the era's block hash, no metadata hash.
    let mut want = call_data.clone();
    want.extend(&extra);
    want.extend(spec.to_le_bytes());
    want.extend(txv.to_le_bytes());
    want.extend(hex32(FINNEY_GENESIS));
    want.extend([0xab; 32]);
    want.push(0);
    let want = if want.len() > 256 {
        blake2_256(&want).to_vec()
    } else {
        want
    };
    assert_eq!(hex(&payload), hex(&want));
    public.verify(&want, &signature).unwrap();
    let mut forged = signature;
    forged.0[0] ^= 1;
    assert!(public.verify(&want, &forged).is_err());

    // The runtime-metadata decoder reads the same call back.
    let decoded =
        subxt::ext::frame_decode::extrinsics::decode_extrinsic(&mut &ext[..], &md, md.types())
            .unwrap();
    assert!(decoded.is_signed());
    assert_eq!(
        (decoded.pallet_name(), decoded.call_name()),
        ("SubtensorModule", "set_weights")
    );
    let args: Vec<_> = decoded.call_data().map(|a| a.name().to_string()).collect();
    assert_eq!(args, ["netuid", "dests", "weights", "version_key"]);
    let _ = PublicKey::default();
}

/// The metadata with `ChargeTransactionPayment` renamed to the wrapper, as
/// in the runtimes that use `ChargeTransactionPaymentWrapper`.
fn metadata_with_wrapper() -> Metadata {
    let prefixed = RuntimeMetadataPrefixed::decode(&mut &metadata_bytes()[..]).unwrap();
    let RuntimeMetadata::V16(mut v16) = prefixed.1 else {
        panic!("the recorded metadata is V16")
    };
    let mut renamed = 0;
    for e in v16.extrinsic.transaction_extensions.iter_mut() {
        if e.identifier == "ChargeTransactionPayment" {
            e.identifier = calls::CHARGE_TX_PAYMENT_WRAPPER.to_string();
            renamed += 1;
        }
    }
    assert_eq!(renamed, 1);
    Metadata::from_v16(v16).unwrap()
}

#[test]
fn the_payment_wrapper_extension_is_signed_like_the_plain_one() {
    let call = calls::set_weights(7, &[3], &[65535], 0);
    let (plain, _) = sign_offline(metadata(), &call);
    let md = metadata_with_wrapper();
    assert!(calls::has_extension(&md, calls::CHARGE_TX_PAYMENT_WRAPPER));
    let (wrapped, _) = sign_offline(metadata_with_wrapper(), &call);
    // Same tip bytes at the same place: the whole transaction is identical
    // (sr25519 signatures are randomized, so compare without them).
    let strip = |e: &[u8]| {
        let mut cursor = e;
        Compact::<u64>::decode(&mut cursor).unwrap();
        let prefix = e.len() - cursor.len();
        [&e[..prefix + 35], &e[prefix + 99..]].concat()
    };
    assert_eq!(hex(&strip(&plain)), hex(&strip(&wrapped)));

    // Without bistro's value for it, subxt refuses to sign.
    let client = offline_client(md);
    let at = client.at_block(1000u64).unwrap();
    let params = DefaultExtrinsicParamsBuilder::<SubstrateConfig>::new()
        .nonce(0)
        .build();
    let tx = at.tx();
    let refused = tx
        .create_v4_signable_offline(&call, params)
        .and_then(|mut s| s.sign(&SubxtSigner(&alice())).map(|_| ()));
    assert!(refused.is_err());
}

#[test]
fn the_signer_adapter_gives_substrate_sr25519() {
    use subxt::tx::Signer as _;
    let pair = alice();
    let adapter = SubxtSigner(&pair);
    assert_eq!(adapter.account_id().0, pair.public().0);
    let subxt::utils::MultiSignature::Sr25519(sig) = adapter.sign(b"payload") else {
        panic!("not sr25519")
    };
    pair.public().verify(b"payload", &Signature(sig)).unwrap();
    let _ = Encode::encode(&0u8);
}

// ---------------------------------------------------------------------------
// Commit-reveal calls and storage.

#[test]
fn timelocked_commit_calls_encode_as_derived_by_hand() {
    let md = metadata();
    let st = md.pallet_by_name("SubtensorModule").unwrap();
    // The indices the commit-reveal note names, from the recorded runtime.
    let index = |name: &str| st.call_variant_by_name(name).unwrap().index;
    assert_eq!(index(calls::COMMIT_CALL), 113);
    assert_eq!(index(calls::COMMIT_MECHANISM_CALL), 118);
    assert!(calls::has_call(&md, calls::COMMIT_MECHANISM_CALL));
    assert!(!calls::has_call(&md, "commit_crv3_weights"));
    let names = |name: &str| -> Vec<String> {
        st.call_variant_by_name(name)
            .unwrap()
            .fields
            .iter()
            .map(|f| f.name.clone().unwrap())
            .collect()
    };
    assert_eq!(
        names(calls::COMMIT_CALL),
        ["netuid", "commit", "reveal_round", "commit_reveal_version"]
    );
    assert_eq!(
        names(calls::COMMIT_MECHANISM_CALL),
        [
            "netuid",
            "mecid",
            "commit",
            "reveal_round",
            "commit_reveal_version"
        ]
    );

    let client = offline_client(metadata());
    let at = client.at_block(0u64).unwrap();
    let commit: Vec<u8> = (0..300u32).map(|i| (i * 13 + 1) as u8).collect();
    for mechanism in [false, true] {
        let call = calls::commit_timelocked_weights(mechanism, 212, &commit, 27_000_123, 4);
        let got = at.tx().call_data(&call).unwrap();
        let mut want = vec![7u8, if mechanism { 118 } else { 113 }];
        want.extend(212u16.to_le_bytes());
        if mechanism {
            want.push(0); // mecid
        }
        want.extend(compact(300));
        want.extend(&commit);
        want.extend(27_000_123u64.to_le_bytes());
        want.extend(4u16.to_le_bytes());
        assert_eq!(hex(&got), hex(&want), "mechanism call: {mechanism}");
    }

    // Signed, the metadata's own decoder reads the call back with its arguments.
    let call = calls::commit_timelocked_weights(true, 3, &commit, 99, 4);
    let (ext, _) = sign_offline(metadata(), &call);
    let decoded =
        subxt::ext::frame_decode::extrinsics::decode_extrinsic(&mut &ext[..], &md, md.types())
            .unwrap();
    assert_eq!(
        (decoded.pallet_name(), decoded.call_name()),
        ("SubtensorModule", calls::COMMIT_MECHANISM_CALL)
    );
    let args: Vec<_> = decoded.call_data().map(|a| a.name().to_string()).collect();
    assert_eq!(
        args,
        [
            "netuid",
            "mecid",
            "commit",
            "reveal_round",
            "commit_reveal_version"
        ]
    );
}

#[test]
fn the_storage_commit_reveal_reads_exists_with_the_expected_types() {
    let md = metadata();
    let reg = md.types();
    let entry = |pallet: &str, name: &str| {
        md.pallet_by_name(pallet)
            .unwrap()
            .storage()
            .unwrap()
            .entry_by_name(name)
            .unwrap_or_else(|| panic!("{pallet}.{name} missing"))
            .clone()
    };
    let per_subnet = |name: &str, hasher: StorageHasher, value: TypeDefPrimitive| {
        let e = entry("SubtensorModule", name);
        let keys: Vec<_> = e
            .keys()
            .map(|k| (k.hasher, primitive(reg, k.key_id)))
            .collect();
        assert_eq!(keys, [(hasher, Some(TypeDefPrimitive::U16))], "{name}");
        assert_eq!(primitive(reg, e.value_ty()), Some(value), "{name}");
    };
    per_subnet("Tempo", StorageHasher::Identity, TypeDefPrimitive::U16);
    per_subnet(
        "RevealPeriodEpochs",
        StorageHasher::Twox64Concat,
        TypeDefPrimitive::U64,
    );
    per_subnet(
        "BlocksSinceLastStep",
        StorageHasher::Identity,
        TypeDefPrimitive::U64,
    );
    let version = entry("SubtensorModule", "CommitRevealWeightsVersion");
    assert_eq!(version.keys().count(), 0);
    assert_eq!(
        primitive(reg, version.value_ty()),
        Some(TypeDefPrimitive::U16)
    );
    // The recorded runtime (spec 393) predates the stateful epoch counter:
    // bistro uses the v1 reveal round there.
    for v2 in ["SubnetEpochIndex", "LastEpochBlock", "PendingEpochAt"] {
        assert!(!calls::has_storage(&md, "SubtensorModule", v2), "{v2}");
    }
    assert!(calls::has_storage(
        &md,
        "SubtensorModule",
        "TimelockedWeightCommits"
    ));
    // Weights[(netuid, uid)] -> Vec<(u16, u16)>, LastUpdate[netuid] -> Vec<u64>.
    let w = entry("SubtensorModule", "Weights");
    assert_eq!(w.keys().count(), 2);
    let TypeDef::Sequence(seq) = &reg.resolve(w.value_ty()).unwrap().type_def else {
        panic!("Weights is not a sequence")
    };
    let TypeDef::Tuple(pair) = &reg.resolve(seq.type_param.id).unwrap().type_def else {
        panic!("Weights items are not pairs")
    };
    for f in &pair.fields {
        assert_eq!(primitive(reg, f.id), Some(TypeDefPrimitive::U16));
    }
    let lu = entry("SubtensorModule", "LastUpdate");
    let item = seq_of(reg, lu.value_ty()).unwrap();
    assert_eq!(primitive(reg, item), Some(TypeDefPrimitive::U64));
    // Drand.BeaconConfig has the fields bistro reads; its default is quicknet.
    let bc = entry("Drand", "BeaconConfig");
    let TypeDef::Composite(c) = &reg.resolve(bc.value_ty()).unwrap().type_def else {
        panic!("BeaconConfig")
    };
    let names: Vec<_> = c.fields.iter().filter_map(|f| f.name.clone()).collect();
    for want in ["public_key", "period", "genesis_time"] {
        assert!(names.iter().any(|n| n == want), "BeaconConfig.{want}");
    }
    let default = bc.default_value().unwrap();
    let quicknet = crate::chain::beacon::QUICKNET_KEY.0;
    assert!(
        default.windows(quicknet.len()).any(|w| w == quicknet),
        "the default beacon is drand quicknet"
    );
}
