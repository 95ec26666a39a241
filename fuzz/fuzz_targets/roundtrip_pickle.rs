//! Any record survives pickle: decode(encode(r)) == r, compared by re-encoded bytes so
//! that NaN (never equal to itself) compares equal to itself.
#![no_main]

use distlog::serialize::{decode, encode};
use distlog::topic::Encoding;
use distlog::Record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|record: Record| {
    let mut body = Vec::new();
    encode(&record, Encoding::Pickle, &mut body);
    let back = match decode(&body, Encoding::Pickle) {
        Ok(back) => back,
        Err(e) => panic!("encoded record does not decode: {e}\nrecord: {record:?}"),
    };
    let mut again = Vec::new();
    encode(&back, Encoding::Pickle, &mut again);
    assert!(
        body == again,
        "pickle round trip changed the record:\n{record:?}\n{back:?}"
    );
});
