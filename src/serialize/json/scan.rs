//! Scanning eight bytes at a time (SWAR): where a run of plain string bytes, digits or
//! ASCII ends, for the encoder and the parser alike.

/// Which ASCII bytes `ensure_ascii=True` escapes, and how: 0 copies the byte, `u`
/// writes `\u00XX`, anything else is the letter after the backslash. Non-ASCII bytes
/// are marked `u` too: their whole character becomes `\uXXXX` escapes.
pub(super) static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20 || i >= 0x7f { b'u' } else { 0 };
        i += 1;
    }
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t
};

/// Which of eight bytes (little-endian lanes, high bit set) are ones `ensure_ascii`
/// escapes: a control character, `"`, `\\`, DEL, or a byte of a non-ASCII character
/// (bit 7 set). SWAR: the classic "has a byte less than n" and "has a zero byte"
/// tricks, on all lanes at once. A borrow can only flag a lane above one that is
/// flagged rightly, so the lowest flagged lane is exact, which is what scans need.
pub(super) fn needs_escape(x: u64) -> u64 {
    // Non-ASCII lanes are flagged anyway, so the tricks' usual `& !x` can go.
    (ascii_stops(x) | (x ^ (ONES * 0x7f)).wrapping_sub(ONES) | x) & HIGH
}

/// Whether a string needs no escape at all, the common case, checked eight bytes at a
/// time.
pub(super) fn is_plain(bytes: &[u8]) -> bool {
    scan(bytes, 0, needs_escape) == bytes.len()
}

/// The first byte from `from` on that `stops` flags, or the end of the input,
/// found eight bytes at a time, for the parser and the encoder alike. `stops` flags a zero byte, which lets the last
/// word be read padded with zeros.
#[inline(always)]
pub(super) fn scan(s: &[u8], from: usize, stops: impl Fn(u64) -> u64) -> usize {
    let Some(tail) = s.get(from..) else {
        return s.len();
    };
    let mut at = from;
    let mut words = tail.chunks_exact(8);
    for chunk in words.by_ref() {
        let lanes = stops(word(chunk));
        if lanes != 0 {
            return at + (lanes.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return s.len();
    }
    // Fewer than eight bytes left: the input's last word shifted down to them (the
    // bytes before them might flag the lanes above with a borrow), or for a
    // shorter input a copy.
    let last = match s.len().checked_sub(8) {
        Some(start) => word(&s[start..]) >> (8 * (at - start)),
        None => {
            let mut padded = [0u8; 8];
            padded[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(padded)
        }
    };
    (at + (stops(last).trailing_zeros() / 8) as usize).min(s.len())
}

/// Which of eight bytes end a plain run inside a JSON string: a quote, a backslash,
/// or a control character (which is an error there). Lanes as [`needs_escape`]'s.
pub(super) fn ends_plain_run(x: u64) -> u64 {
    ascii_stops(x) & !x & HIGH
}

/// Which of eight bytes are not ASCII digits, as lanes like [`needs_escape`]'s: a
/// lane below `0` borrows, and one above `9` gets its high bit from adding 0x46
/// (carrying out only from 0xba up), so again only lanes above a flagged one can be
/// wrong.
pub(super) fn non_digits(x: u64) -> u64 {
    (x.wrapping_sub(ONES * b'0' as u64) | x.wrapping_add(ONES * 0x46)) & HIGH
}

/// [`ends_plain_run`], flagging non-ASCII bytes too.
pub(super) fn ends_ascii_run(x: u64) -> u64 {
    (ascii_stops(x) | x) & HIGH
}

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;

pub(super) const HIGH: u64 = 0x8080_8080_8080_8080;

/// The borrows of "has a byte below 0x20", "has a zero byte" after xor with `"` and
/// with `\\`, in one: those tricks each mask with `!v & HIGH`, where `v` is `x` or
/// `x` xor an ASCII byte, all of which have the high bits of `x`.
pub(super) fn ascii_stops(x: u64) -> u64 {
    x.wrapping_sub(ONES * 0x20)
        | (x ^ (ONES * b'"' as u64)).wrapping_sub(ONES)
        | (x ^ (ONES * b'\\' as u64)).wrapping_sub(ONES)
}

/// Eight bytes as a little-endian word: the first byte is the lowest lane.
pub(super) fn word(eight: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&eight[..8]);
    u64::from_le_bytes(w)
}
