//! JSON bodies, byte for byte as Python's `json.dumps` writes them: `", "` and `": "`
//! separators, every non-ASCII character escaped as `\uXXXX` (surrogate pairs beyond
//! the BMP), `NaN`/`Infinity`, floats as `repr(float)`, integers of any size.
//!
//! The decoder reads what `json.loads` reads, with the same strictness (no control
//! characters inside strings), and bounds nesting depth and integer length.
//!
//! Two choices where Python would raise instead: `bytes` are written as a string with
//! one character per byte (Latin-1), and dict keys that are not strings, numbers, bools
//! or `None` are written as their `repr`.
//!
//! ```
//! use distlog::serialize::json;
//! use distlog::Value;
//! let v = Value::Dict(vec![("ü".into(), Value::Float(f64::NAN))]);
//! let mut out = Vec::new();
//! json::encode_value(&v, &mut out);
//! assert_eq!(out, br#"{"\u00fc": NaN}"#);
//! ```

mod check;
mod decode;
mod duplicate_keys;
mod encode;
mod parser;
mod scan;

pub use check::{check_record, validate_named, validate_record, Checked, Named};
pub use decode::{decode_record, decode_value};
pub(crate) use duplicate_keys::dedup_keys;
pub(crate) use encode::{encode_fields, write_field, write_name, write_str};
pub use encode::{encode_record, encode_value};

#[cfg(test)]
mod tests;
