//! Duplicate keys in an object: the last one wins, as with Python's `json.loads`.

use crate::record::Key;
use crate::value::Value;

/// Whether the keys are certainly distinct, judged by a cheap signature (length and
/// three bytes) of each string key: records almost never repeat a key, so this saves
/// the pairwise comparison. False means "maybe": the exact check follows.
fn certainly_distinct<'k>(keys: impl ExactSizeIterator<Item = Option<&'k [u8]>>) -> bool {
    if keys.len() > 32 {
        return false;
    }
    let mut sigs = [0u64; 32];
    let n = keys.len();
    for (slot, k) in sigs.iter_mut().zip(keys) {
        let Some(b) = k else { return false };
        let at = |i: usize| b.get(i).copied().unwrap_or(0) as u64;
        *slot = (b.len() as u64) << 24
            | at(0) << 16
            | at(b.len() / 2) << 8
            | at(b.len().saturating_sub(1));
    }
    let sigs = &mut sigs[..n];
    sigs.sort_unstable();
    sigs.windows(2).all(|w| w[0] != w[1])
}

/// Whether no key repeats, exactly.
pub(super) fn all_distinct(keys: &[&[u8]]) -> bool {
    if keys.len() <= 8 {
        return keys
            .iter()
            .enumerate()
            .all(|(i, k)| !keys[i + 1..].contains(k));
    }
    if certainly_distinct(keys.iter().map(|k| Some(*k))) {
        return true;
    }
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[0] != w[1])
}

/// Record fields with a repeated key merged: first position, last value, as
/// `json.loads` keeps them.
pub(super) fn dedup_fields(fields: Vec<(Key, Value)>) -> Vec<(Key, Value)> {
    if certainly_distinct(fields.iter().map(|(k, _)| Some(k.as_bytes()))) {
        return fields;
    }
    let mut out: Vec<(Key, Value)> = Vec::with_capacity(fields.len());
    let mut index: std::collections::HashMap<Key, usize> =
        std::collections::HashMap::with_capacity(fields.len());
    for (k, v) in fields {
        match index.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                index.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// A repeated key keeps its first position and its last value, as `json.loads` does.
/// Records have a couple of dozen keys, so the quadratic check is cheap there; large
/// objects go through a hash map so hostile input cannot make it quadratic. Both ways
/// compare keys by `==`, so a dict means the same whatever its size.
pub(crate) fn dedup_keys(items: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    use std::collections::hash_map::{HashMap, RandomState};
    use std::hash::{BuildHasher, Hasher};
    if items.len() <= 32 {
        if certainly_distinct(items.iter().map(|(k, _)| k.as_str().map(str::as_bytes))) {
            return items;
        }
        let mut out: Vec<(Value, Value)> = Vec::with_capacity(items.len());
        for (k, v) in items {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        return out;
    }
    let state = RandomState::new();
    let mut index: HashMap<u64, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<(Value, Value)> = Vec::with_capacity(items.len());
    for (k, v) in items {
        let mut h = state.build_hasher();
        if !hash_key(&k, &mut h) {
            out.push((k, v)); // holds a NaN, so equal to no other key
            continue;
        }
        let hash = h.finish();
        match index.get(&hash) {
            Some(&i) if out[i].0 == k => out[i].1 = v,
            // Two different keys with one 64-bit keyed hash: too rare to optimise.
            Some(_) => match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            },
            None => {
                index.insert(hash, out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// Hashes a dict key consistently with `==` (`-0.0` as `0.0`). False when the key holds
/// a NaN: such a key equals nothing, itself included, so it needs no lookup.
fn hash_key(v: &Value, h: &mut impl std::hash::Hasher) -> bool {
    use std::hash::Hash;
    std::mem::discriminant(v).hash(h);
    match v {
        Value::None => {}
        Value::Bool(b) => b.hash(h),
        Value::Int(i) => i.hash(h),
        Value::BigInt(i) => i.hash(h),
        Value::Float(f) if f.is_nan() => return false,
        Value::Float(f) => (if *f == 0.0 { 0.0f64 } else { *f }).to_bits().hash(h),
        Value::Str(s) => s.hash(h),
        Value::Bytes(b) => b.hash(h),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            items.len().hash(h);
            return items.iter().all(|item| hash_key(item, h));
        }
        Value::Dict(pairs) => {
            pairs.len().hash(h);
            return pairs.iter().all(|(k, v)| hash_key(k, h) && hash_key(v, h));
        }
    }
    true
}
