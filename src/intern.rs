//! Interning of the short strings every log call repeats: targets, key-value keys,
//! thread names. A log call then hands over a `&'static str` instead of allocating a
//! copy that the sender thread frees again (a cross-thread free, which glibc's
//! allocator makes costly).
//!
//! Interned strings are leaked, so the total is bounded: past [`LIMIT`] distinct
//! strings (dynamic keys, thousands of thread names), callers get an owned copy.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Most distinct strings ever interned by the process.
pub(crate) const LIMIT: usize = 4096;
/// Longest string interned; longer ones are rarely repeated names.
const MAX_LEN: usize = 128;

static LEAKED: AtomicUsize = AtomicUsize::new(0);
static GLOBAL: Mutex<Option<HashMap<&'static str, (), Fnv>>> = Mutex::new(None);

/// FNV-1a: the keys are short, and SipHash's DoS resistance buys nothing here since
/// the table is bounded.
struct FnvHasher(u64);

impl Default for FnvHasher {
    fn default() -> Self {
        FnvHasher(crate::fnv::OFFSET_64)
    }
}

impl Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = crate::fnv::fnv1a_64_from(self.0, bytes);
    }
}

type Fnv = BuildHasherDefault<FnvHasher>;

/// Slots of the per-thread cache in front of the table.
const SLOTS: usize = 256;

thread_local! {
    static LOCAL: RefCell<HashMap<&'static str, (), Fnv>> = RefCell::new(HashMap::default());
    /// Direct-mapped by the address of the caller's string: targets and keys are
    /// string literals, so the same call site passes the same address every time and
    /// a hit costs one comparison instead of a hash of the text. Cells rather than a
    /// `RefCell`: no borrow flag to check and no panic path, which kept the access
    /// from being inlined into callers in other modules.
    static BY_ADDRESS: [Cell<(usize, &'static str)>; SLOTS] = const { [const { Cell::new((0, "")) }; SLOTS] };
}

/// The string as a `'static` borrow when it is (or can be) interned, else a copy.
///
/// Four calls per `log::info!` with three key-values, from the logger's module: the
/// hit path is small and inlined there; a miss goes out of line.
#[inline]
pub(crate) fn intern(s: &str) -> Cow<'static, str> {
    let addr = s.as_ptr() as usize;
    // Literals of one crate lie close together, at addresses with low bits in
    // common: mix them all into the slot.
    let slot = ((addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % SLOTS;
    let cached = BY_ADDRESS
        .try_with(|c| {
            let (a, k) = c[slot].get();
            // The address alone is not enough: a heap string may reuse a freed one.
            (a == addr && k == s).then_some(k)
        })
        .ok()
        .flatten();
    match cached {
        Some(k) => Cow::Borrowed(k),
        None => intern_miss(s, addr, slot),
    }
}

#[inline(never)]
fn intern_miss(s: &str, addr: usize, slot: usize) -> Cow<'static, str> {
    if s.len() > MAX_LEN {
        return Cow::Owned(s.to_string());
    }
    let interned = intern_slow(s);
    if let Cow::Borrowed(k) = interned {
        let _ = BY_ADDRESS.try_with(|c| c[slot].set((addr, k)));
    }
    interned
}

fn intern_slow(s: &str) -> Cow<'static, str> {
    let local = LOCAL.with(|l| l.borrow().get_key_value(s).map(|(k, _)| *k));
    if let Some(k) = local {
        return Cow::Borrowed(k);
    }
    // Once per thread and string: share one leaked copy across threads.
    let shared = {
        let Ok(mut global) = GLOBAL.lock() else {
            return Cow::Owned(s.to_string());
        };
        let map = global.get_or_insert_with(HashMap::default);
        match map.get_key_value(s) {
            Some((k, _)) => Some(*k),
            None if LEAKED.fetch_add(1, Ordering::Relaxed) < LIMIT => {
                let k: &'static str = Box::leak(s.to_string().into_boxed_str());
                map.insert(k, ());
                Some(k)
            }
            None => None,
        }
    };
    match shared {
        Some(k) => {
            LOCAL.with(|l| l.borrow_mut().insert(k, ()));
            Cow::Borrowed(k)
        }
        None => Cow::Owned(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_text_same_pointer_across_threads() {
        let a = intern("shop.orders");
        let b = std::thread::spawn(|| intern("shop.orders"))
            .join()
            .unwrap_or_default();
        assert!(matches!((&a, &b), (Cow::Borrowed(x), Cow::Borrowed(y)) if std::ptr::eq(*x, *y)));
        assert!(matches!(intern(&"x".repeat(200)), Cow::Owned(_)));
    }
}
