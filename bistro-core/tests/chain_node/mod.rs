//! A mock subtensor node: a JSON-RPC server over WebSocket on 127.0.0.1
//! that answers the legacy RPC methods `subxt`'s legacy backend calls, with
//! the real main-network metadata, and records the transactions it is sent.
//!
//! Blocks are numbered; block `n` has hash [`hash_of`]`(n)`. Storage and
//! runtime-API answers are SCALE-encoded against the recorded metadata's
//! own types (`scale_value` + the type registry), so what the client decodes
//! is shaped exactly as the live chain's answers.

#![allow(dead_code)]

pub mod ws;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scale_info::{PortableRegistry, TypeDef, TypeDefPrimitive};
use serde_json::{Value as Json, json};
use subxt::Metadata;
use subxt::dynamic::Value;
use subxt::ext::codec::{Compact, Encode};
use subxt::ext::scale_encode::EncodeAsType;

pub const METADATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/chain/finney-metadata.scale"
);

/// The hash of block `n` on the mock chain.
pub fn hash_of(n: u64) -> [u8; 32] {
    let mut h = [0x5bu8; 32];
    h[..8].copy_from_slice(&n.to_le_bytes());
    h
}

/// `0x`-prefixed lowercase hex (the core's encoder).
pub fn hex(bytes: &[u8]) -> String {
    bistro_core::util::hex::encode_0x(bytes)
}

/// Decodes hex with or without `0x` (the core's decoder); panics on bad hex.
pub fn unhex(s: &str) -> Vec<u8> {
    bistro_core::util::hex::decode(s.trim_start_matches("0x")).expect("hex")
}

/// A client of `node` with short timeouts.
pub fn connect(node: &MockNode) -> bistro_core::chain::subtensor::Subtensor {
    let config = bistro_core::chain::subtensor::SubtensorConfig {
        request_timeout: Duration::from_secs(20),
        transaction_timeout: Duration::from_secs(20),
        ..bistro_core::chain::subtensor::SubtensorConfig::default()
    };
    bistro_core::chain::subtensor::Subtensor::connect_with(
        &bistro_core::chain::Network::Url(node.url()),
        config,
    )
    .unwrap()
}

/// What the node does with a transaction.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Include it in the next block with `System.ExtrinsicSuccess`.
    Success,
    /// Include it with `System.ExtrinsicFailed` for this pallet error.
    ModuleError { pallet: String, error: String },
    /// Answer `invalid` (the pool refuses it).
    Invalid,
}

/// The node's state: what tests set up and what it records.
pub struct State {
    pub finalized: u64,
    /// Storage: key -> SCALE value.
    pub storage: HashMap<Vec<u8>, Vec<u8>>,
    /// Storage at one block: (block, key) -> SCALE value; overrides
    /// `storage` for reads at that block's hash.
    pub storage_at: HashMap<(u64, Vec<u8>), Vec<u8>>,
    /// Runtime API answers by `Api_method` and SCALE arguments.
    pub runtime: HashMap<(String, Vec<u8>), Vec<u8>>,
    pub nonce: u32,
    pub outcome: Outcome,
    /// Methods that get no answer (to test timeouts).
    pub silent: Vec<String>,
    /// Close the connection instead of answering the next request.
    pub drop_next: bool,
    /// WebSocket connections accepted so far.
    pub connections: u32,
    /// Every method called, in order.
    pub calls: Vec<String>,
    /// Every transaction submitted.
    pub submitted: Vec<Vec<u8>>,
    /// Blocks made by inclusion: number -> extrinsics.
    pub bodies: HashMap<u64, Vec<Vec<u8>>>,
    /// Events storage value per block number.
    pub events: HashMap<u64, Vec<u8>>,
}

pub struct MockNode {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    pub metadata: Arc<Metadata>,
    metadata_bytes: Arc<Vec<u8>>,
    stop: Arc<AtomicBool>,
}

impl Drop for MockNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl MockNode {
    /// Starts a node at block `finalized`, serving for at most two minutes.
    pub fn start(finalized: u64) -> MockNode {
        let metadata_bytes = Arc::new(std::fs::read(METADATA).unwrap());
        let metadata = Arc::new(Metadata::decode_from(&metadata_bytes).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            finalized,
            storage: HashMap::new(),
            storage_at: HashMap::new(),
            runtime: HashMap::new(),
            nonce: 0,
            outcome: Outcome::Success,
            silent: Vec::new(),
            drop_next: false,
            connections: 0,
            calls: Vec::new(),
            submitted: Vec::new(),
            bodies: HashMap::new(),
            events: HashMap::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let node = MockNode {
            addr,
            state: state.clone(),
            metadata: metadata.clone(),
            metadata_bytes: metadata_bytes.clone(),
            stop: stop.clone(),
        };
        let server = Server {
            state,
            metadata,
            metadata_bytes,
        };
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let server = server.clone();
                        let stop = stop.clone();
                        std::thread::spawn(move || server.serve(stream, stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        node
    }

    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The runtime's `System.Version` constant: `(spec, transaction)` versions.
    pub fn versions(&self) -> (u32, u32) {
        runtime_version(&self.metadata)
    }

    /// The SCALE encoding of `value` as the metadata type `ty`.
    pub fn encode(&self, value: &Value, ty: u32) -> Vec<u8> {
        value.encode_as_type(ty, self.metadata.types()).unwrap()
    }

    /// The value type of storage entry `pallet.entry`.
    pub fn storage_type(&self, pallet: &str, entry: &str) -> u32 {
        self.metadata
            .pallet_by_name(pallet)
            .unwrap()
            .storage()
            .unwrap()
            .entry_by_name(entry)
            .unwrap()
            .value_ty()
    }

    /// The storage key of `pallet.entry` at `keys`, as `subxt` computes it
    /// (the key derivation itself is checked against hand-computed keys in
    /// the crate's unit tests).
    pub fn storage_key<K>(&self, pallet: &str, entry: &str, keys: K) -> Vec<u8>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
    {
        use subxt::config::SubstrateConfig;
        use subxt::config::substrate::{H256, SpecVersionForRange};
        let (spec, txv) = self.versions();
        let config = SubstrateConfig::builder()
            .set_genesis_hash(H256(hash_of(0)))
            .set_spec_version_for_block_ranges([SpecVersionForRange {
                block_range: 0..u64::MAX,
                spec_version: spec,
                transaction_version: txv,
            }])
            .set_metadata_for_spec_versions([(spec, self.metadata.clone())])
            .build();
        let client = subxt::OfflineClient::new_with_config(config);
        let at = client.at_block(0u64).unwrap();
        let addr = subxt::dynamic::storage::<K, Value>(pallet, entry);
        at.storage().entry(addr).unwrap().fetch_key(keys).unwrap()
    }

    /// Sets a storage value (SCALE-encoded from `value` as the entry's type).
    pub fn put<K>(&self, pallet: &str, entry: &str, keys: K, value: &Value)
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
    {
        let key = self.storage_key(pallet, entry, keys);
        let bytes = self.encode(value, self.storage_type(pallet, entry));
        self.state.lock().unwrap().storage.insert(key, bytes);
    }

    /// Sets a storage value as it reads at block `block` only.
    pub fn put_at<K>(&self, block: u64, pallet: &str, entry: &str, keys: K, value: &Value)
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
    {
        let key = self.storage_key(pallet, entry, keys);
        let bytes = self.encode(value, self.storage_type(pallet, entry));
        self.state
            .lock()
            .unwrap()
            .storage_at
            .insert((block, key), bytes);
    }

    /// A value of type `ty` with every field zero, empty or the first variant.
    pub fn zero(&self, ty: u32) -> Value {
        zero_value(self.metadata.types(), ty, 0)
    }
}

pub fn runtime_version(md: &Metadata) -> (u32, u32) {
    use subxt::ext::codec::Decode;
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

/// Replaces the named field `name` of a composite value.
pub fn set_field(value: &mut Value, name: &str, new: Value) {
    use subxt::ext::scale_value::{Composite, ValueDef};
    let ValueDef::Composite(Composite::Named(fields)) = &mut value.value else {
        panic!("not a named composite")
    };
    let slot = fields.iter_mut().find(|(n, _)| n == name).unwrap();
    slot.1 = new;
}

fn zero_value(reg: &PortableRegistry, ty: u32, depth: usize) -> Value {
    assert!(depth < 64, "type nesting too deep");
    let t = reg.resolve(ty).unwrap();
    match &t.type_def {
        TypeDef::Composite(c) => {
            if c.fields.iter().all(|f| f.name.is_some()) && !c.fields.is_empty() {
                Value::named_composite(
                    c.fields
                        .iter()
                        .map(|f| (f.name.clone().unwrap(), zero_value(reg, f.ty.id, depth + 1))),
                )
            } else {
                Value::unnamed_composite(
                    c.fields.iter().map(|f| zero_value(reg, f.ty.id, depth + 1)),
                )
            }
        }
        TypeDef::Variant(v) => {
            let first = v.variants.iter().min_by_key(|x| x.index).unwrap();
            if first.fields.iter().all(|f| f.name.is_some()) && !first.fields.is_empty() {
                Value::named_variant(
                    first.name.clone(),
                    first
                        .fields
                        .iter()
                        .map(|f| (f.name.clone().unwrap(), zero_value(reg, f.ty.id, depth + 1))),
                )
            } else {
                Value::unnamed_variant(
                    first.name.clone(),
                    first
                        .fields
                        .iter()
                        .map(|f| zero_value(reg, f.ty.id, depth + 1)),
                )
            }
        }
        TypeDef::Sequence(_) => Value::unnamed_composite([]),
        TypeDef::Array(a) => Value::unnamed_composite(
            (0..a.len).map(|_| zero_value(reg, a.type_param.id, depth + 1)),
        ),
        TypeDef::Tuple(t) => {
            Value::unnamed_composite(t.fields.iter().map(|f| zero_value(reg, f.id, depth + 1)))
        }
        TypeDef::Primitive(p) => match p {
            TypeDefPrimitive::Bool => Value::bool(false),
            TypeDefPrimitive::Char => Value::char('0'),
            TypeDefPrimitive::Str => Value::string(""),
            TypeDefPrimitive::I8
            | TypeDefPrimitive::I16
            | TypeDefPrimitive::I32
            | TypeDefPrimitive::I64
            | TypeDefPrimitive::I128
            | TypeDefPrimitive::I256 => Value::i128(0),
            _ => Value::u128(0),
        },
        TypeDef::Compact(_) => Value::u128(0),
        TypeDef::BitSequence(_) => Value::bit_sequence(Default::default()),
    }
}

#[derive(Clone)]
struct Server {
    state: Arc<Mutex<State>>,
    metadata: Arc<Metadata>,
    metadata_bytes: Arc<Vec<u8>>,
}

impl Server {
    fn serve(&self, stream: std::net::TcpStream, stop: Arc<AtomicBool>) {
        let Ok(mut conn) = ws::Connection::accept(stream) else {
            return;
        };
        self.state.lock().unwrap().connections += 1;
        let mut next_sub = 0u32;
        for _ in 0..100_000 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(Some(text)) = conn.read_text() else {
                return;
            };
            let Ok(request) = serde_json::from_str::<Json>(&text) else {
                return;
            };
            let id = request["id"].clone();
            let method = request["method"].as_str().unwrap_or_default().to_string();
            let params = request["params"].as_array().cloned().unwrap_or_default();
            let silent = {
                let mut st = self.state.lock().unwrap();
                st.calls.push(method.clone());
                if st.drop_next {
                    st.drop_next = false;
                    // Dropping `conn` closes the socket.
                    return;
                }
                st.silent.contains(&method)
            };
            if silent {
                continue;
            }
            if method == "author_submitAndWatchExtrinsic" {
                next_sub += 1;
                let sub = format!("sub{next_sub}");
                let reply = json!({"jsonrpc": "2.0", "id": id, "result": sub});
                if conn.write_text(&reply.to_string()).is_err() {
                    return;
                }
                for update in self.submit(&params) {
                    let note = json!({
                        "jsonrpc": "2.0",
                        "method": "author_extrinsicUpdate",
                        "params": {"subscription": sub, "result": update},
                    });
                    if conn.write_text(&note.to_string()).is_err() {
                        return;
                    }
                }
                continue;
            }
            let reply = match self.answer(&method, &params) {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err(message) => json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {"code": -32601, "message": message},
                }),
            };
            if conn.write_text(&reply.to_string()).is_err() {
                return;
            }
        }
    }

    fn header(&self, n: u64) -> Json {
        json!({
            "parentHash": hex(&hash_of(n.saturating_sub(1))),
            "number": format!("0x{n:x}"),
            "stateRoot": hex(&[0u8; 32]),
            "extrinsicsRoot": hex(&[0u8; 32]),
            "digest": {"logs": []},
        })
    }

    /// The block number of a hash this node made, if it is known.
    fn number_of(&self, st: &State, hash: &Json) -> Option<u64> {
        let best = st.finalized + st.bodies.len() as u64;
        let wanted = unhex(hash.as_str()?);
        (0..=best).find(|&n| hash_of(n).as_slice() == wanted)
    }

    fn answer(&self, method: &str, params: &[Json]) -> Result<Json, String> {
        let st = self.state.lock().unwrap();
        let best = st.finalized + st.bodies.len() as u64;
        match method {
            "chain_getBlockHash" => {
                let n = params.first().and_then(Json::as_u64).unwrap_or(best);
                Ok(if n <= best {
                    json!(hex(&hash_of(n)))
                } else {
                    Json::Null
                })
            }
            "chain_getFinalizedHead" => Ok(json!(hex(&hash_of(st.finalized)))),
            "chain_getHeader" => Ok(match params.first() {
                Some(h) => match self.number_of(&st, h) {
                    Some(n) => self.header(n),
                    None => Json::Null,
                },
                None => self.header(best),
            }),
            "chain_getBlock" => {
                let n = params.first().and_then(|h| self.number_of(&st, h));
                Ok(match n {
                    Some(n) => {
                        let body: Vec<String> = st
                            .bodies
                            .get(&n)
                            .map(|b| b.iter().map(|x| hex(x)).collect())
                            .unwrap_or_default();
                        json!({"block": {"header": self.header(n), "extrinsics": body}, "justifications": null})
                    }
                    None => Json::Null,
                })
            }
            "state_getStorage" => {
                let key = unhex(params.first().and_then(Json::as_str).unwrap_or_default());
                let at = params.get(1).and_then(|h| self.number_of(&st, h));
                let events_key = [twox(b"System"), twox(b"Events")].concat();
                if key == events_key {
                    return Ok(match at.and_then(|n| st.events.get(&n)) {
                        Some(v) => json!(hex(v)),
                        None => Json::Null,
                    });
                }
                let value = at
                    .and_then(|n| st.storage_at.get(&(n, key.clone())))
                    .or_else(|| st.storage.get(&key));
                Ok(match value {
                    Some(v) => json!(hex(v)),
                    None => Json::Null,
                })
            }
            "state_call" => {
                let name = params.first().and_then(Json::as_str).unwrap_or_default();
                let args = unhex(params.get(1).and_then(Json::as_str).unwrap_or("0x"));
                let bytes = match name {
                    "Core_version" => self
                        .metadata
                        .pallet_by_name("System")
                        .unwrap()
                        .constant_by_name("Version")
                        .unwrap()
                        .value()
                        .to_vec(),
                    "Metadata_metadata_versions" => vec![14u32, 15, 16].encode(),
                    "Metadata_metadata_at_version" => {
                        if args == 16u32.encode() {
                            let mut out = vec![1u8];
                            out.extend(Compact(self.metadata_bytes.len() as u32).encode());
                            out.extend_from_slice(&self.metadata_bytes);
                            out
                        } else {
                            vec![0u8]
                        }
                    }
                    "AccountNonceApi_account_nonce" => st.nonce.encode(),
                    other => match st.runtime.get(&(other.to_string(), args)) {
                        Some(v) => v.clone(),
                        None => return Err(format!("no answer for {other}")),
                    },
                };
                Ok(json!(hex(&bytes)))
            }
            "author_unwatchExtrinsic" => Ok(json!(true)),
            "rpc_methods" => Ok(json!({"methods": []})),
            other => Err(format!("Method not found: {other}")),
        }
    }

    /// Records a transaction and returns the status updates to send.
    fn submit(&self, params: &[Json]) -> Vec<Json> {
        let bytes = unhex(params.first().and_then(Json::as_str).unwrap_or_default());
        let mut st = self.state.lock().unwrap();
        st.submitted.push(bytes.clone());
        match st.outcome.clone() {
            Outcome::Invalid => vec![json!("invalid")],
            outcome => {
                let block = st.finalized + st.bodies.len() as u64 + 1;
                let events = self.events_for(&outcome);
                st.bodies.insert(block, vec![bytes]);
                st.events.insert(block, events);
                vec![json!("ready"), json!({"inBlock": hex(&hash_of(block))})]
            }
        }
    }

    /// `System.Events` for a block whose only extrinsic (index 0) had `outcome`.
    fn events_for(&self, outcome: &Outcome) -> Vec<u8> {
        let reg = self.metadata.types();
        let events_ty = self
            .metadata
            .pallet_by_name("System")
            .unwrap()
            .storage()
            .unwrap()
            .entry_by_name("Events")
            .unwrap()
            .value_ty();
        let TypeDef::Sequence(seq) = &reg.resolve(events_ty).unwrap().type_def else {
            panic!("System.Events is a Vec<EventRecord>")
        };
        // The zero EventRecord is ApplyExtrinsic(0) / System.ExtrinsicSuccess.
        let mut record = zero_value(reg, seq.type_param.id, 0);
        if let Outcome::ModuleError { pallet, error } = outcome {
            let p = self.metadata.pallet_by_name(pallet).unwrap();
            let index = p
                .error_variants()
                .unwrap()
                .iter()
                .find(|v| &v.name == error)
                .unwrap()
                .index;
            // dispatch_info keeps its zero value from the success event.
            let info_ty = {
                use subxt::ext::scale_value::{Composite, ValueDef};
                let ValueDef::Composite(Composite::Named(fields)) = &record.value else {
                    panic!("EventRecord is a struct")
                };
                let event = &fields.iter().find(|(n, _)| n == "event").unwrap().1;
                let ValueDef::Variant(runtime_event) = &event.value else {
                    panic!("RuntimeEvent")
                };
                let ValueDef::Variant(system_event) =
                    &runtime_event.values.values().next().unwrap().value
                else {
                    panic!("System event")
                };
                let Composite::Named(fields) = &system_event.values else {
                    panic!("ExtrinsicSuccess")
                };
                fields[0].1.clone()
            };
            let failed = Value::named_variant(
                "ExtrinsicFailed",
                [
                    (
                        "dispatch_error",
                        Value::unnamed_variant(
                            "Module",
                            [Value::named_composite([
                                ("index", Value::u128(u128::from(p.error_index()))),
                                ("error", Value::from_bytes([index, 0, 0, 0])),
                            ])],
                        ),
                    ),
                    ("dispatch_info", info_ty),
                ],
            );
            set_field(
                &mut record,
                "event",
                Value::unnamed_variant("System", [failed]),
            );
        }
        Value::unnamed_composite([record])
            .encode_as_type(events_ty, reg)
            .unwrap()
    }
}

/// twox128, computed by the `subxt` offline machinery's own storage-key code
/// would be circular here; the mock only needs the well-known prefix.
fn twox(name: &[u8]) -> Vec<u8> {
    match name {
        b"System" => unhex("26aa394eea5630e07c48ae0c9558cef7"),
        b"Events" => unhex("80d41e5e16056765bc8461851072c9d7"),
        _ => panic!("unknown prefix"),
    }
}
