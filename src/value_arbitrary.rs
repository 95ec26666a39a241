//! `Arbitrary` for [`Value`] and [`Record`] (feature `arbitrary`), so fuzz targets can
//! build records from raw bytes and check that every codec round-trips them.
//!
//! The values are those a decoder can give back: integers that fit in 64 bits are
//! always `Int` (the decoders narrow a `BigInt` that fits), nesting stays well inside
//! the default [`Limits`](crate::serialize::Limits), and dict keys are unique, since a
//! decoder keeps only the last value of a repeated key.

use crate::record::Record;
use crate::value::Value;
use arbitrary::{Arbitrary, Result, Unstructured};
use num_bigint::BigInt;

/// Deepest container nesting generated: far below the decoders' default limit of 128,
/// so a round trip never fails for depth, and deep enough to reach every code path.
const MAX_DEPTH: usize = 8;

/// Longest `BigInt` in bytes: past 255 the pickle encoder switches from LONG1 to LONG4,
/// and 300 bytes (about 723 digits) stays under the 4300-digit limit.
const MAX_BIGINT_BYTES: usize = 300;

impl<'a> Arbitrary<'a> for Value {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        value(u, MAX_DEPTH)
    }
}

impl<'a> Arbitrary<'a> for Record {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let mut record = Record::new();
        while u.arbitrary::<bool>()? {
            let key: String = u.arbitrary()?;
            let v = value(u, MAX_DEPTH - 1)?;
            // `insert` replaces a repeated key in place, as a decoder would.
            record.insert(key, v);
        }
        Ok(record)
    }
}

/// A scalar: what can appear at the bottom of any value.
fn scalar(u: &mut Unstructured<'_>) -> Result<Value> {
    Ok(match u.int_in_range(0..=6u8)? {
        0 => Value::None,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::Int(u.arbitrary()?),
        3 => {
            let len = u.int_in_range(0..=MAX_BIGINT_BYTES)?;
            // Narrowed, so a big integer that fits in 64 bits is an `Int`, as decoded.
            Value::from_bigint(BigInt::from_signed_bytes_le(u.bytes(len.min(u.len()))?))
        }
        // Any bit pattern: NaNs with payloads, subnormals, -0.0, the infinities.
        4 => Value::Float(f64::from_bits(u.arbitrary()?)),
        5 => Value::Str(u.arbitrary()?),
        _ => Value::Bytes(u.arbitrary()?),
    })
}

/// A value that Python can use as a dict key or set element: a scalar or a tuple of
/// such (lists, dicts and sets are unhashable, and the pickle decoder refuses them).
fn hashable(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    if depth > 0 && u.ratio(1u8, 8)? {
        return Ok(Value::Tuple(seq(u, depth - 1, hashable)?));
    }
    scalar(u)
}

/// Items for as long as the input says "one more", so the length costs a byte per item
/// and an exhausted input ends the sequence.
fn seq<'a>(
    u: &mut Unstructured<'a>,
    depth: usize,
    item: fn(&mut Unstructured<'a>, usize) -> Result<Value>,
) -> Result<Vec<Value>> {
    let mut items = Vec::new();
    while u.arbitrary::<bool>()? {
        items.push(item(u, depth)?);
    }
    Ok(items)
}

fn value(u: &mut Unstructured<'_>, depth: usize) -> Result<Value> {
    if depth == 0 {
        return scalar(u);
    }
    Ok(match u.int_in_range(0..=10u8)? {
        0..=6 => scalar(u)?,
        7 => Value::List(seq(u, depth - 1, value)?),
        8 => Value::Tuple(seq(u, depth - 1, value)?),
        9 => Value::Set(seq(u, depth - 1, hashable)?),
        _ => {
            let mut items: Vec<(Value, Value)> = Vec::new();
            while u.arbitrary::<bool>()? {
                let k = hashable(u, depth - 1)?;
                let v = value(u, depth - 1)?;
                // Unique by `==`, the decoders' own test: NaN keys stay distinct, as
                // distinct NaN objects do in a Python dict.
                match items.iter_mut().find(|(old, _)| *old == k) {
                    Some(slot) => slot.1 = v,
                    None => items.push((k, v)),
                }
            }
            Value::Dict(items)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_from_any_bytes() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200 {
            let data: Vec<u8> = (0..512)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut u = Unstructured::new(&data);
            let r = Record::arbitrary(&mut u).unwrap_or_default();
            let mut keys: Vec<&str> = r.fields().map(|(k, _)| k).collect();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), r.len(), "record keys are unique");
        }
    }
}
