//! Responses written straight from a typed output: a `serde::Serializer` guided by the
//! model's output shape as it goes, with no `serde_json::Value` in between. Its bytes are
//! those of [`super::encode_output`] given the output's Value, for every protocol.
//!
//! A structure's fields come in the model's member order (the generated shapes declare
//! them so), so each is matched by a cursor over the compiled members ([`crate::model`]'s
//! plan), every reference resolved to its target once, when the model was compiled. A value
//! opens its element (XML) or key (JSON, CBOR) only once it is known not to be absent.
//! What the Value path orders differently is reordered in place when its container ends: a
//! JSON object's keys (sorted, as `serde_json`'s map writes them) and a map's entries
//! (sorted by key, as in the Value); CBOR's counts are patched then too.
//!
//! What this encoder does not stream (fields out of model order, a map or a Value given for
//! a structure, enum variants with data, raw bytes) it reports as [`TypedError::Fallback`],
//! and [`super::encode_output_typed`] then encodes the output's Value instead.

mod scalar;
mod value;

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use super::path::Path;
use super::{EncodeError, HttpResponse};
use crate::model::{Plan, ServiceModel};
use crate::protocol::Protocol;
use value::{Slot, ValueSer};

/// Why a typed output was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedError {
    /// The output does not fit the model: the Value path's error for it.
    Encode(EncodeError),
    /// Something this encoder leaves to the Value path (named here), which writes the same
    /// bytes for it.
    Fallback(&'static str),
    /// The output's own `Serialize` failed.
    Custom(String),
}

impl fmt::Display for TypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(e) => e.fmt(f),
            Self::Fallback(what) => write!(f, "the typed encoder does not stream {what}"),
            Self::Custom(m) => write!(f, "the output does not serialize: {m}"),
        }
    }
}

impl std::error::Error for TypedError {}

impl serde::ser::Error for TypedError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}

impl From<EncodeError> for TypedError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

type Result<T> = std::result::Result<T, TypedError>;

/// Encodes the typed output `output` of `operation` (ignored for operations without
/// output), or says why not; see [`super::encode_output_typed`] for the form that falls
/// back to the Value path.
pub fn encode_output<T: Serialize + ?Sized>(
    model: &ServiceModel,
    protocol: Protocol,
    operation: &str,
    output: &T,
    request_id: &str,
) -> Result<HttpResponse> {
    let op = model
        .operation(operation)
        .ok_or_else(|| EncodeError::NoOperation(operation.to_string()))?;
    let plan = model.plan();
    let root = op.output.as_ref().map(|o| {
        plan.index(&o.shape)
            .expect("operations' shapes are checked when the model is loaded")
    });
    match protocol {
        Protocol::Ec2 | Protocol::Query => {
            let (head, tail) = super::xml_frame(model, protocol, operation, op, request_id);
            let mut out = head.into_bytes();
            if let Some(root) = root {
                let syntax = Syntax::Xml {
                    list_item: if protocol == Protocol::Ec2 {
                        "item"
                    } else {
                        "member"
                    },
                };
                out = Enc::new(plan, syntax, out).root(root, output)?;
            }
            out.extend_from_slice(tail.as_bytes());
            Ok(super::xml_response(200, out, request_id))
        }
        Protocol::Json | Protocol::RpcV2Cbor => {
            let syntax = if protocol == Protocol::Json {
                Syntax::Json
            } else {
                Syntax::Cbor
            };
            let body = match root {
                Some(root) => Enc::new(plan, syntax, Vec::new()).root(root, output)?,
                None if syntax == Syntax::Json => b"{}".to_vec(),
                None => vec![0xa0],
            };
            Ok(super::doc_http(
                Some(model),
                protocol,
                200,
                body,
                request_id,
                None,
            ))
        }
    }
}

/// What the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// EC2 or awsQuery XML; a wrapped list's elements are named `list_item` unless the
    /// model names them.
    Xml { list_item: &'static str },
    /// awsJson.
    Json,
    /// RPC v2 CBOR.
    Cbor,
}

/// An entry of a container being written whose entries may need reordering when it ends:
/// its key and where its bytes are in the output (JSON's separating comma excluded).
#[derive(Debug)]
struct Entry<'m> {
    key: Cow<'m, str>,
    start: usize,
    end: usize,
}

/// The state of one encoding: the output so far, and the pending entries of the open
/// containers that may need reordering (each container owns those from its `base` on).
pub(crate) struct Enc<'m> {
    plan: &'m Plan,
    syntax: Syntax,
    out: Vec<u8>,
    entries: Vec<Entry<'m>>,
}

impl<'m> Enc<'m> {
    fn new(plan: &'m Plan, syntax: Syntax, out: Vec<u8>) -> Self {
        Self {
            plan,
            syntax,
            out,
            entries: Vec::new(),
        }
    }

    /// Writes `output` as the structure at `root`, and gives the bytes.
    fn root<T: Serialize + ?Sized>(mut self, root: usize, output: &T) -> Result<Vec<u8>> {
        let shape = self.plan.shape(root);
        output.serialize(ValueSer {
            enc: &mut self,
            shape,
            flattened: false,
            timestamp_format: None,
            slot: Slot::Root,
            path: Path::Root,
            depth: 0,
        })?;
        Ok(self.out)
    }

    /// Records an entry of the innermost reorderable container.
    fn entry(&mut self, key: Cow<'m, str>, start: usize) {
        let end = self.out.len();
        self.entries.push(Entry { key, start, end });
    }

    /// Ends a reorderable container whose entries are those from `base` on and whose bytes
    /// start at `region`: puts them in key order, keeping the last of equal keys (as a
    /// `serde_json` map does), and gives how many remain.
    fn settle(&mut self, region: usize, base: usize) -> usize {
        let pending = &self.entries[base..];
        let n = pending.len();
        if pending.windows(2).all(|w| w[0].key < w[1].key) {
            self.entries.truncate(base);
            return n;
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| pending[a].key.cmp(&pending[b].key));
        // Stable: among equal keys the last written is last of its run.
        let kept: Vec<usize> = order
            .iter()
            .enumerate()
            .filter(|&(i, &e)| {
                order
                    .get(i + 1)
                    .is_none_or(|&f| pending[f].key != pending[e].key)
            })
            .map(|(_, &e)| e)
            .collect();
        let tail = self.out.split_off(region);
        for (i, &e) in kept.iter().enumerate() {
            if i > 0 && self.syntax == Syntax::Json {
                self.out.push(b',');
            }
            let Entry { start, end, .. } = pending[e];
            self.out
                .extend_from_slice(&tail[start - region..end - region]);
        }
        self.entries.truncate(base);
        kept.len()
    }
}
