//! FNV-1a, the one hash of the crate: the span and trace ids of tasks (simple enough
//! for a collector in any language to recompute) and the interning table's hasher
//! (short keys, a bounded table: SipHash's DoS resistance buys nothing there).

/// The 64-bit offset basis, the state before any byte.
pub(crate) const OFFSET_64: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues a 64-bit FNV-1a hash in state `h` over `bytes`.
#[inline]
pub(crate) fn fnv1a_64_from(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 64-bit FNV-1a of `bytes`.
#[inline]
pub(crate) fn fnv1a_64(bytes: &[u8]) -> u64 {
    fnv1a_64_from(OFFSET_64, bytes)
}

/// 128-bit FNV-1a of `bytes`.
pub(crate) fn fnv1a_128(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64_from(fnv1a_64(b"ab"), b"c"), fnv1a_64(b"abc"));
        assert_eq!(fnv1a_128(b""), 0x6c62272e07bb014262b821756295c58d);
        assert_eq!(fnv1a_128(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    }
}
