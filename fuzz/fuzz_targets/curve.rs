//! CURVE: one input fed to both sides' HELLO/WELCOME/INITIATE/READY processing, the
//! metadata parser and, after a real in-memory handshake, MESSAGE decoding
//! (`zeromq::curve::fuzz_curve`). Whatever a peer sends, nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    zeromq::curve::fuzz_curve(data);
});
