//! Pickle bodies: protocol 3, as Python distlog writes with `pickle.dumps(d, 3)`.
//!
//! The decoder is a data-only pickle machine. It understands every opcode that builds
//! plain data (all protocols up to 5) and refuses every opcode that would import or
//! call anything (`GLOBAL`, `REDUCE`, `BUILD`, `NEWOBJ`, `INST`, `OBJ`, persistent ids,
//! extensions), naming it in the error, so no code ever runs. The one exception is
//! `set()` and `frozenset()`, which protocols below 4 can only write as a call to the
//! builtin: that exact shape is recognised and becomes [`Value::Set`].
//!
//! Memo references are kept as references while parsing (Python fills a dict after
//! memoizing it), then expanded under [`Limits`]: depth and total size are bounded, so
//! neither 200,000 nested lists nor a memo "billion laughs" can exhaust the stack or
//! memory. Declared lengths are checked against the input before anything is read.
//!
//! ```
//! use distlog::serialize::{pickle, Limits};
//! use distlog::Value;
//! let v = Value::Dict(vec![("n".into(), Value::from(300))]);
//! let mut body = Vec::new();
//! pickle::encode_value(&v, &mut body);
//! assert_eq!(&body[..2], b"\x80\x03");
//! assert_eq!(pickle::decode_value(&body, &Limits::default()).unwrap(), v);
//!
//! let evil = b"\x80\x03cos\nsystem\nX\x02\x00\x00\x00id\x85R.";
//! let err = pickle::decode_value(evil, &Limits::default()).unwrap_err();
//! assert!(err.to_string().contains("GLOBAL"));
//! ```

use super::error::{type_name, DecodeError, ErrorKind};
use super::limits::Limits;
use crate::record::{FieldRef, Fields, Record};
use crate::topic::Encoding;
use crate::value::Value;
use num_bigint::BigInt;

// Opcodes, named as in CPython's pickletools.
const MARK: u8 = b'(';
const STOP: u8 = b'.';
const POP: u8 = b'0';
const POP_MARK: u8 = b'1';
const DUP: u8 = b'2';
const FLOAT: u8 = b'F';
const INT: u8 = b'I';
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const LONG: u8 = b'L';
const BININT2: u8 = b'M';
const NONE: u8 = b'N';
const UNICODE: u8 = b'V';
const BINUNICODE: u8 = b'X';
const APPEND: u8 = b'a';
const DICT: u8 = b'd';
const EMPTY_DICT: u8 = b'}';
const APPENDS: u8 = b'e';
const GET: u8 = b'g';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const LIST: u8 = b'l';
const EMPTY_LIST: u8 = b']';
const PUT: u8 = b'p';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const SETITEM: u8 = b's';
const TUPLE: u8 = b't';
const EMPTY_TUPLE: u8 = b')';
const SETITEMS: u8 = b'u';
const BINFLOAT: u8 = b'G';
const BINSTRING: u8 = b'T';
const SHORT_BINSTRING: u8 = b'U';
const GLOBAL: u8 = b'c';
const REDUCE: u8 = b'R';
const PROTO: u8 = 0x80;
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const LONG1: u8 = 0x8a;
const LONG4: u8 = 0x8b;
const BINBYTES: u8 = b'B';
const SHORT_BINBYTES: u8 = b'C';
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE8: u8 = 0x8d;
const BINBYTES8: u8 = 0x8e;
const EMPTY_SET: u8 = 0x8f;
const ADDITEMS: u8 = 0x90;
const FROZENSET: u8 = 0x91;
const MEMOIZE: u8 = 0x94;
const FRAME: u8 = 0x95;
const BYTEARRAY8: u8 = 0x96;

/// Pushes allowed per value of [`Limits::max_values`]. The encoder writes a value with
/// one push, except a set: `set(list)` takes four (the constructor, the list, the
/// argument tuple, the set) for one value. Four per value is what lets every value
/// this decoder accepts (at most `max_values`) decode again after encoding.
const MAX_PUSHES_PER_VALUE: usize = 4;

fn forbidden_name(op: u8) -> Option<&'static str> {
    Some(match op {
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'b' => "BUILD",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        b'S' => "STRING",
        _ => return None,
    })
}

/// Appends a record as a protocol-3 pickle of a dict.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    encode_fields(record, out)
}

/// Appends any [`Fields`] as a protocol-3 pickle of a dict: how the handler writes an
/// event without building a record first.
pub(crate) fn encode_fields(fields: &dyn Fields, out: &mut Vec<u8>) {
    let mut w = Writer { out, memo: 0 };
    w.out.extend_from_slice(&[PROTO, 3]);
    w.dict_header(0);
    let len = fields.len();
    let mut i = 0;
    // Python's _batch_setitems, streamed: batches of 1000 between MARK and SETITEMS,
    // a batch of one as a lone SETITEM.
    fields.for_each(&mut |k, v| {
        let batch = (len - i / 1000 * 1000).min(1000);
        if i % 1000 == 0 && batch > 1 {
            w.out.push(MARK);
        }
        w.str(k.as_str());
        w.field(v);
        i += 1;
        if i % 1000 == 0 || i == len {
            w.out.push(if batch > 1 { SETITEMS } else { SETITEM });
        }
    });
    w.out.push(STOP);
}

/// Appends one value as a complete protocol-3 pickle.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    let mut w = Writer { out, memo: 0 };
    w.out.extend_from_slice(&[PROTO, 3]);
    w.value(v);
    w.out.push(STOP);
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    memo: u32,
}

impl Writer<'_> {
    fn memoize(&mut self) {
        if self.memo < 256 {
            self.out.extend_from_slice(&[BINPUT, self.memo as u8]);
        } else {
            self.out.push(LONG_BINPUT);
            self.out.extend_from_slice(&self.memo.to_le_bytes());
        }
        self.memo += 1;
    }

    fn str(&mut self, s: &str) {
        self.out.push(BINUNICODE);
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        self.memoize();
    }

    fn dict_header(&mut self, _len: usize) {
        self.out.push(EMPTY_DICT);
        self.memoize();
    }

    /// Python's `_batch_setitems` / `_batch_appends`: one item uses the single opcode,
    /// more go between MARK and the batch opcode, 1000 at a time.
    fn batched<T>(
        &mut self,
        len: usize,
        single: u8,
        many: u8,
        items: impl Iterator<Item = T>,
        mut each: impl FnMut(&mut Self, T),
    ) {
        let mut items = items.peekable();
        let mut left = len;
        while left > 0 {
            let n = left.min(1000);
            if n == 1 {
                if let Some(item) = items.next() {
                    each(self, item);
                }
                self.out.push(single);
            } else {
                self.out.push(MARK);
                for item in items.by_ref().take(n) {
                    each(self, item);
                }
                self.out.push(many);
            }
            left -= n;
        }
    }

    fn int(&mut self, i: i64) {
        if (0..=0xff).contains(&i) {
            self.out.extend_from_slice(&[BININT1, i as u8]);
        } else if (0..=0xffff).contains(&i) {
            self.out.push(BININT2);
            self.out.extend_from_slice(&(i as u16).to_le_bytes());
        } else if i32::try_from(i).is_ok() {
            self.out.push(BININT);
            self.out.extend_from_slice(&(i as i32).to_le_bytes());
        } else {
            self.long(&BigInt::from(i));
        }
    }

    fn long(&mut self, i: &BigInt) {
        let bytes = i.to_signed_bytes_le();
        if bytes.len() < 256 {
            self.out.extend_from_slice(&[LONG1, bytes.len() as u8]);
        } else {
            self.out.push(LONG4);
            self.out
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(&bytes);
    }

    fn field(&mut self, v: FieldRef<'_>) {
        match v {
            FieldRef::None => self.out.push(NONE),
            FieldRef::Str(s) => self.str(s),
            FieldRef::Int(i) => self.int(i),
            FieldRef::U64(u) => match i64::try_from(u) {
                Ok(i) => self.int(i),
                Err(_) => self.long(&BigInt::from(u)),
            },
            FieldRef::Float(f) => {
                self.out.push(BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            FieldRef::Value(v) => self.value(v),
        }
    }

    fn seq(&mut self, items: &[Value]) {
        self.batched(items.len(), APPEND, APPENDS, items.iter(), |w, v| {
            w.value(v)
        });
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::None => self.out.push(NONE),
            Value::Bool(true) => self.out.push(NEWTRUE),
            Value::Bool(false) => self.out.push(NEWFALSE),
            Value::Int(i) => self.int(*i),
            Value::BigInt(i) => self.long(i),
            Value::Float(f) => {
                self.out.push(BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Value::Str(s) => self.str(s),
            Value::Bytes(b) => {
                if b.len() < 256 {
                    self.out.extend_from_slice(&[SHORT_BINBYTES, b.len() as u8]);
                } else {
                    self.out.push(BINBYTES);
                    self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                }
                self.out.extend_from_slice(b);
                self.memoize();
            }
            Value::List(items) => {
                self.out.push(EMPTY_LIST);
                self.memoize();
                self.seq(items);
            }
            Value::Tuple(items) => {
                match items.len() {
                    0 => {
                        self.out.push(EMPTY_TUPLE);
                        return;
                    }
                    1..=3 => {
                        for item in items {
                            self.value(item);
                        }
                        self.out.push(TUPLE1 + items.len() as u8 - 1);
                    }
                    _ => {
                        self.out.push(MARK);
                        for item in items {
                            self.value(item);
                        }
                        self.out.push(TUPLE);
                    }
                }
                self.memoize();
            }
            Value::Set(items) => {
                // Protocol 3 has no set opcodes: Python writes `set([...])` as a call.
                self.out.extend_from_slice(b"c__builtin__\nset\n");
                self.memoize();
                self.out.push(EMPTY_LIST);
                self.memoize();
                self.seq(items);
                self.out.push(TUPLE1);
                self.memoize();
                self.out.push(REDUCE);
                self.memoize();
            }
            Value::Dict(items) => {
                self.dict_header(items.len());
                self.batched(items.len(), SETITEM, SETITEMS, items.iter(), |w, (k, v)| {
                    w.value(k);
                    w.value(v);
                });
            }
        }
    }
}

/// A value under construction: containers hold node ids, so that a memoized container
/// filled later, or referenced twice, behaves as the same object, as in Python.
#[derive(Debug)]
enum Node {
    Leaf(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Set(Vec<usize>),
    /// `__builtin__.set` or `frozenset`, found by GLOBAL; only REDUCE may use it.
    SetConstructor,
}

fn node_type(n: &Node) -> &'static str {
    match n {
        Node::Leaf(v) => type_name(v),
        Node::List(_) => "list",
        Node::Tuple(_) => "tuple",
        Node::Dict(_) => "dict",
        Node::Set(_) => "set",
        Node::SetConstructor => "set constructor",
    }
}

/// Decodes one pickle, data only.
///
/// ```
/// use distlog::serialize::{pickle, ErrorKind, Limits};
/// // 200,000 nested lists: a typed error, not a stack overflow.
/// let mut evil = b"\x80\x03".to_vec();
/// for _ in 0..200_000 { evil.extend_from_slice(b"]q\x00"); }
/// let err = pickle::decode_value(&evil, &Limits::default()).unwrap_err();
/// assert!(matches!(err.kind, ErrorKind::Eof | ErrorKind::TooDeep(_)));
/// ```
pub fn decode_value(input: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    Machine {
        input,
        pos: 0,
        op_pos: 0,
        nodes: Vec::new(),
        shared: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: Vec::new(),
        pushes: 0,
        limits,
    }
    .run()
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    op_pos: usize,
    nodes: Vec<Node>,
    /// Whether a node was pushed again by GET or DUP, so it must be cloned, not moved.
    shared: Vec<bool>,
    stack: Vec<usize>,
    marks: Vec<usize>,
    memo: Vec<Option<usize>>,
    /// Every push onto the stack, of a new node or of a reference (GET, DUP). Each
    /// node, stack slot and container entry comes from one, so bounding this by
    /// `max_values` bounds the memory of the parse, not only of the expansion.
    pushes: usize,
    limits: &'a Limits,
}

impl<'a> Machine<'a> {
    fn err(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(Encoding::Pickle, self.op_pos, kind)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.input.len());
        match end {
            Some(end) => {
                let s = &self.input[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None if n > self.input.len() - self.pos && n > 8 => {
                Err(self.err(ErrorKind::LengthPastEnd(n as u64)))
            }
            None => Err(DecodeError::new(
                Encoding::Pickle,
                self.input.len(),
                ErrorKind::Eof,
            )),
        }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32le(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64le(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn sized(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        if n > (self.input.len() - self.pos) as u64 {
            return Err(self.err(ErrorKind::LengthPastEnd(n)));
        }
        self.take(n as usize)
    }

    fn line(&mut self) -> Result<&'a str, DecodeError> {
        let rest = &self.input[self.pos..];
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| DecodeError::new(Encoding::Pickle, self.input.len(), ErrorKind::Eof))?;
        self.pos += nl + 1;
        std::str::from_utf8(&rest[..nl]).map_err(|_| self.err(ErrorKind::InvalidUtf8))
    }

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.shared.push(false);
        self.push_id(self.nodes.len() - 1);
    }

    fn push_id(&mut self, id: usize) {
        self.pushes += 1;
        self.stack.push(id);
    }

    fn push_value(&mut self, v: Value) {
        self.push(Node::Leaf(v));
    }

    fn pop(&mut self, op: &'static str) -> Result<usize, DecodeError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.err(ErrorKind::StackUnderflow(op)));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.err(ErrorKind::StackUnderflow(op)))
    }

    fn pop_mark(&mut self, op: &'static str) -> Result<Vec<usize>, DecodeError> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| self.err(ErrorKind::StackUnderflow(op)))?;
        Ok(self.stack.split_off(mark))
    }

    fn top(&self, op: &'static str) -> Result<usize, DecodeError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(&id) if self.stack.len() > floor => Ok(id),
            _ => Err(self.err(ErrorKind::StackUnderflow(op))),
        }
    }

    fn check_key(&self, key: usize) -> Result<(), DecodeError> {
        match &self.nodes[key] {
            Node::List(_) | Node::Dict(_) | Node::Set(_) => {
                Err(self.err(ErrorKind::UnhashableKey(node_type(&self.nodes[key]))))
            }
            _ => Ok(()),
        }
    }

    fn set_items(
        &mut self,
        target: usize,
        pairs: &[usize],
        op: &'static str,
    ) -> Result<(), DecodeError> {
        if !pairs.len().is_multiple_of(2) {
            return Err(self.err(ErrorKind::StackUnderflow(op)));
        }
        for kv in pairs.chunks(2) {
            self.check_key(kv[0])?;
        }
        let found = node_type(&self.nodes[target]);
        match &mut self.nodes[target] {
            Node::Dict(items) => {
                items.extend(pairs.chunks(2).map(|kv| (kv[0], kv[1])));
                Ok(())
            }
            _ => Err(self.err(ErrorKind::WrongType { op, found })),
        }
    }

    fn append(
        &mut self,
        target: usize,
        items: &[usize],
        op: &'static str,
    ) -> Result<(), DecodeError> {
        let found = node_type(&self.nodes[target]);
        match &mut self.nodes[target] {
            Node::List(list) if op != "ADDITEMS" => {
                list.extend_from_slice(items);
                Ok(())
            }
            Node::Set(set) if op == "ADDITEMS" => {
                set.extend_from_slice(items);
                Ok(())
            }
            _ => Err(self.err(ErrorKind::WrongType { op, found })),
        }
    }

    fn memo_put(&mut self, index: u64) -> Result<(), DecodeError> {
        let id = self.top("PUT")?;
        // A memo index beyond what the input could hold is hostile; cap the table.
        if index > self.input.len() as u64 {
            return Err(self.err(ErrorKind::LengthPastEnd(index)));
        }
        // The table is a vector indexed by memo id, 16 bytes a slot: without this, one
        // LONG_BINPUT near the end of a 64 MiB body allocated 1 GiB. Python numbers
        // its memo from 0, one id per memoized value, so real ids stay below the count
        // of values, which max_values bounds.
        if index >= self.limits.max_values as u64 {
            return Err(self.err(ErrorKind::TooManyValues(self.limits.max_values)));
        }
        let index = index as usize;
        if self.memo.len() <= index {
            self.memo.resize(index + 1, None);
        }
        self.memo[index] = Some(id);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), DecodeError> {
        let id = usize::try_from(index)
            .ok()
            .and_then(|i| self.memo.get(i).copied().flatten())
            .ok_or_else(|| self.err(ErrorKind::MissingMemo(index)))?;
        self.shared[id] = true;
        self.push_id(id);
        Ok(())
    }

    fn long_from(&self, bytes: &[u8]) -> Result<Value, DecodeError> {
        // Python's int_max_str_digits bounds decimal text; 4300 digits is ~1786 bytes.
        let max_bytes = self.limits.max_int_digits * 10 / 24 + 1;
        if bytes.len() > max_bytes {
            return Err(self.err(ErrorKind::IntTooLong(bytes.len() * 24 / 10)));
        }
        Ok(Value::from_bigint(BigInt::from_signed_bytes_le(bytes)))
    }

    fn text_int(&self, line: &str) -> Result<Value, DecodeError> {
        let digits = line.trim_end_matches('L');
        if digits.len() > self.limits.max_int_digits {
            return Err(self.err(ErrorKind::IntTooLong(digits.len())));
        }
        digits
            .parse::<BigInt>()
            .map(Value::from_bigint)
            .map_err(|_| self.err(ErrorKind::BadNumber(line.to_string())))
    }

    fn run(mut self) -> Result<Value, DecodeError> {
        loop {
            // Without this, a body of one-byte pushes (`N`, `]`, BINGET) would hold
            // some 40 bytes of nodes and stack per input byte: 2.6 GiB for 64 MiB.
            // The bound is MAX_PUSHES_PER_VALUE times the value bound, so what this
            // decoder accepts also decodes once re-encoded; `>=` keeps the node vector
            // at a power-of-two capacity instead of doubling it for one last push.
            if self.pushes >= self.limits.max_values.saturating_mul(MAX_PUSHES_PER_VALUE) {
                return Err(self.err(ErrorKind::TooManyValues(self.limits.max_values)));
            }
            self.op_pos = self.pos;
            let op = self.byte()?;
            match op {
                PROTO => {
                    let p = self.byte()?;
                    if p > 5 {
                        return Err(self.err(ErrorKind::UnsupportedProtocol(p)));
                    }
                }
                FRAME => {
                    self.u64le()?;
                }
                STOP => {
                    let id = self.pop("STOP")?;
                    let mut budget = self.limits.max_values;
                    return self.build(id, 0, false, &mut budget);
                }
                MARK => self.marks.push(self.stack.len()),
                POP => {
                    if self.stack.len() == self.marks.last().copied().unwrap_or(0)
                        && !self.marks.is_empty()
                    {
                        self.marks.pop();
                    } else {
                        self.pop("POP")?;
                    }
                }
                POP_MARK => {
                    self.pop_mark("POP_MARK")?;
                }
                DUP => {
                    let id = self.top("DUP")?;
                    self.shared[id] = true;
                    self.push_id(id);
                }
                NONE => self.push_value(Value::None),
                NEWTRUE => self.push_value(Value::Bool(true)),
                NEWFALSE => self.push_value(Value::Bool(false)),
                BININT => {
                    let v = self.u32le()? as i32;
                    self.push_value(Value::Int(v as i64));
                }
                BININT1 => {
                    let v = self.byte()?;
                    self.push_value(Value::Int(v as i64));
                }
                BININT2 => {
                    let b = self.take(2)?;
                    self.push_value(Value::Int(u16::from_le_bytes([b[0], b[1]]) as i64));
                }
                LONG1 => {
                    let n = self.byte()? as u64;
                    let b = self.sized(n)?;
                    let v = self.long_from(b)?;
                    self.push_value(v);
                }
                LONG4 => {
                    let n = self.u32le()? as i32;
                    if n < 0 {
                        return Err(self.err(ErrorKind::BadNumber(format!("LONG4 length {n}"))));
                    }
                    let b = self.sized(n as u64)?;
                    let v = self.long_from(b)?;
                    self.push_value(v);
                }
                INT => {
                    let line = self.line()?;
                    let v = match line {
                        "01" => Value::Bool(true),
                        "00" => Value::Bool(false),
                        _ => self.text_int(line)?,
                    };
                    self.push_value(v);
                }
                LONG => {
                    let line = self.line()?;
                    let v = self.text_int(line)?;
                    self.push_value(v);
                }
                BINFLOAT => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push_value(Value::Float(f64::from_be_bytes(a)));
                }
                FLOAT => {
                    let line = self.line()?;
                    let f = line
                        .trim()
                        .parse::<f64>()
                        .map_err(|_| self.err(ErrorKind::BadNumber(line.to_string())))?;
                    self.push_value(Value::Float(f));
                }
                BINUNICODE | SHORT_BINUNICODE | BINUNICODE8 => {
                    let n = match op {
                        SHORT_BINUNICODE => self.byte()? as u64,
                        BINUNICODE => self.u32le()? as u64,
                        _ => self.u64le()?,
                    };
                    let b = self.sized(n)?;
                    let s = std::str::from_utf8(b).map_err(|_| self.err(ErrorKind::InvalidUtf8))?;
                    self.push_value(Value::Str(s.to_string()));
                }
                UNICODE => {
                    let line = self.line()?;
                    let s = raw_unicode_unescape(line).ok_or_else(|| {
                        self.err(ErrorKind::BadEscape(line.chars().take(32).collect()))
                    })?;
                    self.push_value(Value::Str(s));
                }
                BINBYTES | SHORT_BINBYTES | BINBYTES8 | BYTEARRAY8 => {
                    let n = match op {
                        SHORT_BINBYTES => self.byte()? as u64,
                        BINBYTES => self.u32le()? as u64,
                        _ => self.u64le()?,
                    };
                    let b = self.sized(n)?;
                    self.push_value(Value::Bytes(b.to_vec()));
                }
                BINSTRING | SHORT_BINSTRING => {
                    // Python 2 `str`: Python 3 decodes it as ASCII by default.
                    let n = match op {
                        SHORT_BINSTRING => self.byte()? as u64,
                        _ => self.u32le()? as u64,
                    };
                    let b = self.sized(n)?;
                    let v = match std::str::from_utf8(b) {
                        Ok(s) if s.is_ascii() => Value::Str(s.to_string()),
                        _ => Value::Bytes(b.to_vec()),
                    };
                    self.push_value(v);
                }
                EMPTY_DICT => self.push(Node::Dict(Vec::new())),
                EMPTY_LIST => self.push(Node::List(Vec::new())),
                EMPTY_TUPLE => self.push(Node::Tuple(Vec::new())),
                EMPTY_SET => self.push(Node::Set(Vec::new())),
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = (op - TUPLE1 + 1) as usize;
                    let mut items = vec![0; n];
                    for slot in items.iter_mut().rev() {
                        *slot = self.pop("TUPLE")?;
                    }
                    self.push(Node::Tuple(items));
                }
                TUPLE => {
                    let items = self.pop_mark("TUPLE")?;
                    self.push(Node::Tuple(items));
                }
                LIST => {
                    let items = self.pop_mark("LIST")?;
                    self.push(Node::List(items));
                }
                FROZENSET => {
                    let items = self.pop_mark("FROZENSET")?;
                    self.push(Node::Set(items));
                }
                DICT => {
                    let items = self.pop_mark("DICT")?;
                    self.nodes.push(Node::Dict(Vec::new()));
                    self.shared.push(false);
                    let id = self.nodes.len() - 1;
                    self.set_items(id, &items, "DICT")?;
                    self.push_id(id);
                }
                APPEND => {
                    let v = self.pop("APPEND")?;
                    let target = self.top("APPEND")?;
                    self.append(target, &[v], "APPEND")?;
                }
                APPENDS | ADDITEMS => {
                    let name = if op == APPENDS { "APPENDS" } else { "ADDITEMS" };
                    let items = self.pop_mark(name)?;
                    let target = self.top(name)?;
                    self.append(target, &items, name)?;
                }
                SETITEM => {
                    let v = self.pop("SETITEM")?;
                    let k = self.pop("SETITEM")?;
                    let target = self.top("SETITEM")?;
                    self.set_items(target, &[k, v], "SETITEM")?;
                }
                SETITEMS => {
                    let items = self.pop_mark("SETITEMS")?;
                    let target = self.top("SETITEMS")?;
                    self.set_items(target, &items, "SETITEMS")?;
                }
                BINPUT => {
                    let i = self.byte()? as u64;
                    self.memo_put(i)?;
                }
                LONG_BINPUT => {
                    let i = self.u32le()? as u64;
                    self.memo_put(i)?;
                }
                PUT => {
                    let line = self.line()?;
                    let i = line
                        .parse::<u64>()
                        .map_err(|_| self.err(ErrorKind::BadNumber(line.to_string())))?;
                    self.memo_put(i)?;
                }
                MEMOIZE => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?;
                }
                BINGET => {
                    let i = self.byte()? as u64;
                    self.memo_get(i)?;
                }
                LONG_BINGET => {
                    let i = self.u32le()? as u64;
                    self.memo_get(i)?;
                }
                GET => {
                    let line = self.line()?;
                    let i = line
                        .parse::<u64>()
                        .map_err(|_| self.err(ErrorKind::BadNumber(line.to_string())))?;
                    self.memo_get(i)?;
                }
                GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let builtin = matches!(module, "__builtin__" | "builtins");
                    if !(builtin && matches!(name, "set" | "frozenset")) {
                        return Err(self.err(ErrorKind::ForbiddenOpcode {
                            opcode: op,
                            name: "GLOBAL",
                        }));
                    }
                    self.push(Node::SetConstructor);
                }
                REDUCE => {
                    let args = self.pop("REDUCE")?;
                    let func = self.pop("REDUCE")?;
                    let list = match (&self.nodes[func], &self.nodes[args]) {
                        (Node::SetConstructor, Node::Tuple(a)) if a.is_empty() => None,
                        (Node::SetConstructor, Node::Tuple(a)) if a.len() == 1 => {
                            match &self.nodes[a[0]] {
                                Node::List(_) => Some(a[0]),
                                _ => {
                                    return Err(self.err(ErrorKind::ForbiddenOpcode {
                                        opcode: op,
                                        name: "REDUCE",
                                    }))
                                }
                            }
                        }
                        _ => {
                            return Err(self.err(ErrorKind::ForbiddenOpcode {
                                opcode: op,
                                name: "REDUCE",
                            }))
                        }
                    };
                    let items = match list {
                        None => Vec::new(),
                        // As Python writes it, nothing else refers to the list or the
                        // argument tuple, so the items move into the set.
                        Some(id) if !self.shared[id] && !self.shared[args] => {
                            match &mut self.nodes[id] {
                                Node::List(items) => std::mem::take(items),
                                _ => Vec::new(),
                            }
                        }
                        // Otherwise `set(list)` copies, as in Python. A copy counts
                        // like pushes, or one big list made into a set over and over
                        // would cost its length each time for a few bytes of input.
                        Some(id) => match &self.nodes[id] {
                            Node::List(items) => {
                                self.pushes += items.len();
                                items.clone()
                            }
                            _ => Vec::new(),
                        },
                    };
                    self.push(Node::Set(items));
                }
                other => {
                    return Err(match forbidden_name(other) {
                        Some(name) => self.err(ErrorKind::ForbiddenOpcode {
                            opcode: other,
                            name,
                        }),
                        None => self.err(ErrorKind::UnknownOpcode(other)),
                    });
                }
            }
        }
    }

    /// Expands a node into a value, moving leaves out unless they are shared.
    fn build(
        &mut self,
        id: usize,
        depth: usize,
        in_shared: bool,
        budget: &mut usize,
    ) -> Result<Value, DecodeError> {
        // A copy costs its size, since copies are what memo references multiply; a
        // leaf used once is moved, and its bytes are already paid for by the input
        // (charging them too refused any string past 64 MiB as "too many values").
        let copied = in_shared || self.shared[id];
        let cost = match &self.nodes[id] {
            Node::Leaf(Value::Str(s)) if copied => 1 + s.len() / 64,
            Node::Leaf(Value::Bytes(b)) if copied => 1 + b.len() / 64,
            _ => 1,
        };
        *budget = budget.checked_sub(cost).ok_or_else(|| {
            DecodeError::new(
                Encoding::Pickle,
                self.input.len(),
                ErrorKind::TooManyValues(self.limits.max_values),
            )
        })?;
        let too_deep = || {
            DecodeError::new(
                Encoding::Pickle,
                0,
                ErrorKind::TooDeep(self.limits.max_depth),
            )
        };
        let children = match &mut self.nodes[id] {
            Node::Leaf(v) => {
                return Ok(if in_shared || self.shared[id] {
                    v.clone()
                } else {
                    std::mem::take(v)
                });
            }
            Node::SetConstructor => {
                return Err(DecodeError::new(
                    Encoding::Pickle,
                    0,
                    ErrorKind::ForbiddenOpcode {
                        opcode: GLOBAL,
                        name: "GLOBAL",
                    },
                ));
            }
            _ if depth >= self.limits.max_depth => return Err(too_deep()),
            Node::List(items) | Node::Tuple(items) | Node::Set(items) => items.clone(),
            Node::Dict(pairs) => pairs.iter().flat_map(|&(k, v)| [k, v]).collect(),
        };
        // Everything below a shared container is reachable twice, so it is cloned.
        let shared = in_shared || self.shared[id];
        let mut values = Vec::with_capacity(children.len());
        for child in children {
            values.push(self.build(child, depth + 1, shared, budget)?);
        }
        Ok(match &self.nodes[id] {
            Node::List(_) => Value::List(values),
            Node::Tuple(_) => Value::Tuple(values),
            Node::Set(_) => Value::Set(values),
            _ => {
                let mut pairs = Vec::with_capacity(values.len() / 2);
                let mut it = values.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Value::Dict(super::json::dedup_keys(pairs))
            }
        })
    }
}

/// Python's `raw-unicode-escape` decoding, as the text `UNICODE` opcode uses.
fn raw_unicode_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && matches!(chars.peek(), Some('u' | 'U')) {
            let width = if chars.next() == Some('u') { 4 } else { 8 };
            let hex: String = chars.by_ref().take(width).collect();
            if hex.len() != width {
                return None;
            }
            out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?).unwrap_or('\u{fffd}'));
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(b: &[u8]) -> Result<Value, DecodeError> {
        decode_value(b, &Limits::default())
    }

    #[test]
    fn ints_as_python_writes_them() {
        let cases: [(i64, &[u8]); 6] = [
            (0, b"K\x00"),
            (255, b"K\xff"),
            (256, b"M\x00\x01"),
            (-1, b"J\xff\xff\xff\xff"),
            (70000, b"Jp\x11\x01\x00"),
            (140444193540992, b"\x8a\x06\x80KD\xb6\xbb\x7f"),
        ];
        for (i, want) in cases {
            let mut out = Vec::new();
            encode_value(&Value::Int(i), &mut out);
            assert_eq!(&out[2..out.len() - 1], want, "{i}");
            assert_eq!(dec(&out).unwrap(), Value::Int(i));
        }
    }

    #[test]
    fn memo_shares_containers_filled_later() {
        // l = []; d = {'a': l, 'b': l}; l.append(1)  -- as Python writes it
        let p = b"\x80\x03}q\x00(X\x01\x00\x00\x00aq\x01]q\x02K\x01aX\x01\x00\x00\x00bq\x03h\x02u.";
        let v = dec(p).unwrap();
        assert_eq!(v.to_string(), "{'a': [1], 'b': [1]}");
    }

    #[test]
    fn billion_laughs_is_bounded() {
        let mut p = b"\x80\x03]q\x00".to_vec();
        for i in 0..40u8 {
            p.extend_from_slice(&[b'h', i, b'h', i, 0x86, b'q', i + 1]);
        }
        p.push(b'.');
        assert!(matches!(
            dec(&p).unwrap_err().kind,
            ErrorKind::TooManyValues(_)
        ));
    }

    #[test]
    fn hostile_lengths_and_opcodes() {
        let e = dec(b"\x80\x03X\xff\xff\xff\xff").unwrap_err();
        assert_eq!(e.kind, ErrorKind::LengthPastEnd(0xffff_ffff));
        let e = dec(b"\x80\x03\x8d\x00\x00\x00\x00\x01\x00\x00\x00abc").unwrap_err();
        assert_eq!(e.kind, ErrorKind::LengthPastEnd(1 << 32));
        assert!(matches!(
            dec(b"\x80\x03cos\nsystem\n").unwrap_err().kind,
            ErrorKind::ForbiddenOpcode { name: "GLOBAL", .. }
        ));
        assert!(matches!(
            dec(b"\x80\x03}b.").unwrap_err().kind,
            ErrorKind::ForbiddenOpcode { name: "BUILD", .. }
        ));
        assert!(matches!(
            dec(b"\x80\x03a").unwrap_err().kind,
            ErrorKind::StackUnderflow("APPEND")
        ));
        assert!(matches!(
            dec(b"\x80\x03h\x05").unwrap_err().kind,
            ErrorKind::MissingMemo(5)
        ));
        assert!(matches!(
            dec(b"\x80\x03K\x01K\x02a").unwrap_err().kind,
            ErrorKind::WrongType {
                op: "APPEND",
                found: "int"
            }
        ));
        assert!(matches!(
            dec(b"\x80\x03}]K\x01s").unwrap_err().kind,
            ErrorKind::UnhashableKey("list")
        ));
        assert!(matches!(
            dec(b"\x80\x09").unwrap_err().kind,
            ErrorKind::UnsupportedProtocol(9)
        ));
        assert!(matches!(
            dec(b"\xfe").unwrap_err().kind,
            ErrorKind::UnknownOpcode(0xfe)
        ));
        assert!(matches!(dec(b"\x80\x03").unwrap_err().kind, ErrorKind::Eof));
        // a self-containing list cannot be expanded into a tree
        assert!(matches!(
            dec(b"\x80\x03]q\x00h\x00a.").unwrap_err().kind,
            ErrorKind::TooDeep(_)
        ));
    }

    #[test]
    fn every_value_type_round_trips() {
        let v = Value::Dict(vec![
            (Value::from("s"), Value::from("ünï 😀")),
            (
                Value::from("big"),
                Value::BigInt("-123456789012345678901234567890".parse().unwrap()),
            ),
            (Value::from("f"), Value::Float(f64::INFINITY)),
            (Value::from("b"), Value::Bytes(vec![0, 255])),
            (
                Value::from("t"),
                Value::Tuple(vec![
                    Value::Int(1),
                    Value::Int(2),
                    Value::Int(3),
                    Value::Int(4),
                ]),
            ),
            (Value::from("t1"), Value::Tuple(vec![Value::None])),
            (Value::from("set"), Value::Set(vec![Value::Int(1)])),
            (
                Value::Int(5),
                Value::List((0..2500).map(Value::Int).collect()),
            ),
            (Value::Tuple(vec![]), Value::Bool(false)),
        ]);
        let mut out = Vec::new();
        encode_value(&v, &mut out);
        assert_eq!(dec(&out).unwrap(), v);
    }
}
