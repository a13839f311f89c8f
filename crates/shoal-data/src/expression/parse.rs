//! Building an expression tree from its msgpack wire form, with the official server's static
//! type checks (`as/src/base/exp.c`, `build_*`): every node has a result type known before any
//! record is seen, and a tree that mixes types (say `eq(int_bin, string)`) is refused with
//! PARAMETER, as the server does, rather than silently never matching.
//!
//! Wire form: a value is a bare msgpack element (int, float, bool, nil, particle-tagged
//! string/blob/HLL/GeoJSON, map); lists must be quoted (`[126, [...]]`); anything else is an
//! array `[op_code, args...]`.

use super::posix_regex;
use crate::error::DataError;
use crate::msgpack::{self, Head, Reader};
use regex::bytes::Regex;

/// Deepest expression nesting accepted.
pub const DEPTH_MAX: usize = 64;
/// Most nodes one expression may have.
pub const NODES_MAX: usize = 16_384;
/// Largest packed expression accepted (the official server's EXP_MAX_SIZE).
pub const EXPRESSION_MAX_BYTES: usize = 1024 * 1024;
/// Longest bin name.
const BIN_NAME_MAX_BYTES: usize = shoal_base::constants::BIN_NAME_LEN_MAX_BYTES;

/// Result types, numbered as on the wire (`Exp.Type` in the clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Nil = 0,
    Bool = 1,
    Int = 2,
    Str = 3,
    List = 4,
    Map = 5,
    Blob = 6,
    Float = 7,
    Geo = 8,
    Hll = 9,
}

impl Ty {
    fn from_wire(v: u64) -> Option<Ty> {
        Some(match v {
            0 => Ty::Nil,
            1 => Ty::Bool,
            2 => Ty::Int,
            3 => Ty::Str,
            4 => Ty::List,
            5 => Ty::Map,
            6 => Ty::Blob,
            7 => Ty::Float,
            8 => Ty::Geo,
            9 => Ty::Hll,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Operators taking one or more numeric arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarOp {
    Add,
    Sub,
    Mul,
    Div,
    Min,
    Max,
    IntAnd,
    IntOr,
    IntXor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Abs,
    Floor,
    Ceil,
    ToInt,
    ToFloat,
    IntNot,
    IntCount,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Pow,
    Log,
    Mod,
    Lshift,
    Rshift,
    ArShift,
    Lscan,
    Rscan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    DeviceSize,
    LastUpdate,
    SinceUpdate,
    VoidTime,
    Ttl,
    SetName,
    KeyExists,
    IsTombstone,
    MemorySize,
    RecordSize,
}

/// One argument of a CDT call: a literal copied as is, or an expression evaluated first.
#[derive(Debug, Clone)]
pub enum CallArg {
    Raw(Vec<u8>),
    Exp(Node),
}

/// A CDT read or modify evaluated on a list/map value (`[127, type, system, op, bin]`).
#[derive(Debug, Clone)]
pub struct Call {
    pub ty: Ty,
    pub modify: bool,
    /// Raw context element when the op is wrapped as `[0xff, ctx, [op...]]`.
    pub ctx: Option<Vec<u8>>,
    pub op: i64,
    pub args: Vec<CallArg>,
    pub bin: Node,
}

/// An expression node; literals keep their decoded value.
#[derive(Debug, Clone)]
pub enum Node {
    /// The `unknown` op: evaluates to "unknown".
    Unknown,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// String, blob, HLL and GeoJSON payloads (tag removed) and list/map msgpack.
    Bytes(Ty, Vec<u8>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Regex(Box<Regex>, Box<Node>),
    InList(Box<Node>, Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Exclusive(Vec<Node>),
    Vargs(VarOp, Vec<Node>),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    DigestModulo(i64),
    Meta(Meta),
    Key(Ty),
    Bin(Vec<u8>, Ty),
    BinType(Vec<u8>),
    /// `map_keys` (false) / `map_values` (true).
    MapEntries(Box<Node>, bool),
    Cond(Vec<(Node, Node)>, Box<Node>),
    Let(Vec<(usize, Node)>, Box<Node>),
    Var(usize),
    Call(Box<Call>),
}

/// A parsed node with its static result type.
struct Typed {
    node: Node,
    ty: Ty,
    /// The node is the `unknown` op (which `cond` accepts in any branch).
    is_unknown: bool,
}

fn typed(node: Node, ty: Ty) -> Typed {
    Typed {
        node,
        ty,
        is_unknown: false,
    }
}

struct VarDef {
    name: Vec<u8>,
    slot: usize,
    /// `None` while the variable's own definition is being parsed.
    ty: Option<Ty>,
}

struct Parser<'a> {
    r: Reader<'a>,
    nodes: usize,
    scope: Vec<VarDef>,
    slots: usize,
    slots_max: usize,
}

fn bad(what: &'static str) -> DataError {
    DataError::Parameter(what)
}

/// Parses a whole filter: one expression, nothing after it, returning a boolean.
/// Returns the tree and the number of `let` variable slots evaluation needs.
pub fn parse_filter(bytes: &[u8]) -> Result<(Node, usize), DataError> {
    if bytes.is_empty() || bytes.len() > EXPRESSION_MAX_BYTES {
        return Err(bad("filter expression empty or too large"));
    }
    let mut p = Parser {
        r: Reader::new(bytes),
        nodes: 0,
        scope: Vec::new(),
        slots: 0,
        slots_max: 0,
    };
    let t = p.next(0)?;
    if !p.r.is_empty() {
        return Err(bad("trailing bytes after filter expression"));
    }
    if t.ty != Ty::Bool {
        return Err(bad("filter expression must return a boolean"));
    }
    Ok((t.node, p.slots_max))
}

impl<'a> Parser<'a> {
    fn head(&mut self) -> Result<Head<'a>, DataError> {
        self.r
            .head()
            .map_err(|_| bad("malformed expression msgpack"))
    }

    fn uint(&mut self) -> Result<u64, DataError> {
        match self.head()? {
            Head::Int(i) => u64::try_from(i).map_err(|_| bad("expected an unsigned integer")),
            _ => Err(bad("expected an integer")),
        }
    }

    fn int(&mut self) -> Result<i64, DataError> {
        match self.head()? {
            // msgpack_get_int64 keeps the low 64 bits of a large unsigned value.
            Head::Int(i) => Ok(i as i64),
            _ => Err(bad("expected an integer")),
        }
    }

    /// A raw (untagged) string: bin names, variable names, regex patterns.
    fn raw_str(&mut self) -> Result<&'a [u8], DataError> {
        match self.head()? {
            Head::Str(b) | Head::Bin(b) => Ok(b),
            _ => Err(bad("expected a string")),
        }
    }

    fn next(&mut self, depth: usize) -> Result<Typed, DataError> {
        if depth > DEPTH_MAX {
            return Err(bad("expression nested too deeply"));
        }
        self.nodes += 1;
        if self.nodes > NODES_MAX {
            return Err(bad("expression has too many nodes"));
        }
        if matches!(self.r.peek(), Some(0x80..=0x8f | 0xde | 0xdf)) {
            let raw = self.r.element().map_err(|_| bad("malformed map value"))?;
            msgpack::decode(raw).map_err(|_| bad("malformed map value"))?;
            return Ok(typed(Node::Bytes(Ty::Map, raw.to_vec()), Ty::Map));
        }
        let head = self.head()?;
        Ok(match head {
            Head::Nil => typed(Node::Nil, Ty::Nil),
            Head::Bool(b) => typed(Node::Bool(b), Ty::Bool),
            Head::Int(i) => typed(Node::Int(i as i64), Ty::Int),
            Head::Float(f) => typed(Node::Float(f), Ty::Float),
            Head::Str(b) | Head::Bin(b) => {
                let (&tag, rest) = b.split_first().ok_or(bad("empty string value"))?;
                let ty = match tag {
                    3 => Ty::Str,
                    4 => Ty::Blob,
                    18 => Ty::Hll,
                    23 => Ty::Geo,
                    _ => return Err(bad("unknown particle tag on a string value")),
                };
                typed(Node::Bytes(ty, rest.to_vec()), ty)
            }
            Head::Map(_) => return Err(bad("malformed map value")),
            Head::Ext(..) => return Err(bad("unexpected ext value in expression")),
            Head::Array(n) => {
                if n == 0 {
                    return Err(bad("empty expression array"));
                }
                if n as usize > self.r.remaining() {
                    return Err(bad("expression array count exceeds its bytes"));
                }
                let op = self.uint()?;
                self.op(op, n as usize - 1, depth)?
            }
        })
    }

    fn expect_args(&self, got: usize, want: usize) -> Result<(), DataError> {
        if got == want {
            Ok(())
        } else {
            Err(bad("wrong number of expression arguments"))
        }
    }

    fn child(&mut self, depth: usize) -> Result<Typed, DataError> {
        self.next(depth + 1)
    }

    fn op(&mut self, op: u64, argc: usize, depth: usize) -> Result<Typed, DataError> {
        Ok(match op {
            0 => {
                self.expect_args(argc, 0)?;
                Typed {
                    node: Node::Unknown,
                    ty: Ty::Bool,
                    is_unknown: true,
                }
            }
            1..=6 => {
                self.expect_args(argc, 2)?;
                let cmp = match op {
                    1 => CmpOp::Eq,
                    2 => CmpOp::Ne,
                    3 => CmpOp::Gt,
                    4 => CmpOp::Ge,
                    5 => CmpOp::Lt,
                    _ => CmpOp::Le,
                };
                let l = self.child(depth)?;
                let r = self.child(depth)?;
                if l.ty != r.ty {
                    return Err(bad("compared expressions have different types"));
                }
                if matches!(l.ty, Ty::Geo | Ty::Hll) {
                    return Err(bad("GeoJSON and HLL values cannot be compared"));
                }
                typed(Node::Cmp(cmp, Box::new(l.node), Box::new(r.node)), Ty::Bool)
            }
            7 => {
                self.expect_args(argc, 3)?;
                let flags = self.int()?;
                let pattern = self.raw_str()?;
                let s = self.child(depth)?;
                if s.ty != Ty::Str {
                    return Err(bad("regex compare needs a string expression"));
                }
                let re = posix_regex::compile(pattern, flags)
                    .ok_or(bad("invalid or unsupported regular expression"))?;
                typed(Node::Regex(Box::new(re), Box::new(s.node)), Ty::Bool)
            }
            8 => return Err(DataError::Unsupported("geospatial filter expressions")),
            9 => {
                self.expect_args(argc, 2)?;
                let v = self.child(depth)?;
                let l = self.child(depth)?;
                if l.ty != Ty::List {
                    return Err(bad("in_list needs a list"));
                }
                typed(Node::InList(Box::new(v.node), Box::new(l.node)), Ty::Bool)
            }
            16 | 17 | 19 => {
                if argc < 2 {
                    return Err(bad("logical operator needs two or more arguments"));
                }
                let mut items = Vec::with_capacity(argc);
                for _ in 0..argc {
                    let t = self.child(depth)?;
                    if t.ty != Ty::Bool {
                        return Err(bad("logical operator argument is not a boolean"));
                    }
                    items.push(t.node);
                }
                let node = match op {
                    16 => Node::And(items),
                    17 => Node::Or(items),
                    _ => Node::Exclusive(items),
                };
                typed(node, Ty::Bool)
            }
            18 => {
                self.expect_args(argc, 1)?;
                let t = self.child(depth)?;
                if t.ty != Ty::Bool {
                    return Err(bad("not needs a boolean"));
                }
                typed(Node::Not(Box::new(t.node)), Ty::Bool)
            }
            20..=23 | 50 | 51 => {
                let vop = match op {
                    20 => VarOp::Add,
                    21 => VarOp::Sub,
                    22 => VarOp::Mul,
                    23 => VarOp::Div,
                    50 => VarOp::Min,
                    _ => VarOp::Max,
                };
                if argc < 1 {
                    return Err(bad("arithmetic needs an argument"));
                }
                let mut ty = None;
                let mut items = Vec::with_capacity(argc);
                for _ in 0..argc {
                    let t = self.child(depth)?;
                    if !matches!(t.ty, Ty::Int | Ty::Float) || ty.is_some_and(|x| x != t.ty) {
                        return Err(bad("arithmetic arguments must all be int or all float"));
                    }
                    ty = Some(t.ty);
                    items.push(t.node);
                }
                typed(Node::Vargs(vop, items), ty.unwrap_or(Ty::Int))
            }
            32..=34 => {
                let vop = match op {
                    32 => VarOp::IntAnd,
                    33 => VarOp::IntOr,
                    _ => VarOp::IntXor,
                };
                if argc < 1 {
                    return Err(bad("integer operator needs an argument"));
                }
                let mut items = Vec::with_capacity(argc);
                for _ in 0..argc {
                    let t = self.child(depth)?;
                    if t.ty != Ty::Int {
                        return Err(bad("integer operator argument is not an int"));
                    }
                    items.push(t.node);
                }
                typed(Node::Vargs(vop, items), Ty::Int)
            }
            27..=31 | 35 | 39 => {
                self.expect_args(argc, 1)?;
                let t = self.child(depth)?;
                let (uop, want, out) = match op {
                    27 => (UnOp::Abs, None, t.ty),
                    28 => (UnOp::Floor, Some(Ty::Float), Ty::Float),
                    29 => (UnOp::Ceil, Some(Ty::Float), Ty::Float),
                    30 => (UnOp::ToInt, Some(Ty::Float), Ty::Int),
                    31 => (UnOp::ToFloat, Some(Ty::Int), Ty::Float),
                    35 => (UnOp::IntNot, Some(Ty::Int), Ty::Int),
                    _ => (UnOp::IntCount, Some(Ty::Int), Ty::Int),
                };
                let ok = match want {
                    Some(w) => t.ty == w,
                    None => matches!(t.ty, Ty::Int | Ty::Float),
                };
                if !ok {
                    return Err(bad("numeric operator argument has the wrong type"));
                }
                typed(Node::Unary(uop, Box::new(t.node)), out)
            }
            24 | 25 | 26 | 36..=38 | 40 | 41 => {
                self.expect_args(argc, 2)?;
                let a = self.child(depth)?;
                let b = self.child(depth)?;
                let (bop, wa, wb, out) = match op {
                    24 => (BinOp::Pow, Ty::Float, Ty::Float, Ty::Float),
                    25 => (BinOp::Log, Ty::Float, Ty::Float, Ty::Float),
                    26 => (BinOp::Mod, Ty::Int, Ty::Int, Ty::Int),
                    36 => (BinOp::Lshift, Ty::Int, Ty::Int, Ty::Int),
                    37 => (BinOp::Rshift, Ty::Int, Ty::Int, Ty::Int),
                    38 => (BinOp::ArShift, Ty::Int, Ty::Int, Ty::Int),
                    40 => (BinOp::Lscan, Ty::Int, Ty::Bool, Ty::Int),
                    _ => (BinOp::Rscan, Ty::Int, Ty::Bool, Ty::Int),
                };
                if a.ty != wa || b.ty != wb {
                    return Err(bad("numeric operator arguments have the wrong types"));
                }
                typed(Node::Binary(bop, Box::new(a.node), Box::new(b.node)), out)
            }
            64 => {
                self.expect_args(argc, 1)?;
                // The server keeps the modulus as a 32-bit int.
                let m = self.int()? as i32;
                if m == 0 {
                    return Err(bad("digest modulo by zero"));
                }
                typed(Node::DigestModulo(i64::from(m)), Ty::Int)
            }
            65..=74 => {
                self.expect_args(argc, 0)?;
                let (m, ty) = match op {
                    65 => (Meta::DeviceSize, Ty::Int),
                    66 => (Meta::LastUpdate, Ty::Int),
                    67 => (Meta::SinceUpdate, Ty::Int),
                    68 => (Meta::VoidTime, Ty::Int),
                    69 => (Meta::Ttl, Ty::Int),
                    70 => (Meta::SetName, Ty::Str),
                    71 => (Meta::KeyExists, Ty::Bool),
                    72 => (Meta::IsTombstone, Ty::Bool),
                    73 => (Meta::MemorySize, Ty::Int),
                    _ => (Meta::RecordSize, Ty::Int),
                };
                typed(Node::Meta(m), ty)
            }
            80 => {
                self.expect_args(argc, 1)?;
                let ty = match self.uint()? {
                    2 => Ty::Int,
                    3 => Ty::Str,
                    6 => Ty::Blob,
                    _ => return Err(bad("key type must be int, string or blob")),
                };
                typed(Node::Key(ty), ty)
            }
            81 => {
                self.expect_args(argc, 2)?;
                let ty = Ty::from_wire(self.uint()?).ok_or(bad("invalid bin type"))?;
                let name = self.bin_name()?;
                typed(Node::Bin(name, ty), ty)
            }
            82 => {
                self.expect_args(argc, 1)?;
                let name = self.bin_name()?;
                typed(Node::BinType(name), Ty::Int)
            }
            101 | 102 => {
                self.expect_args(argc, 1)?;
                let t = self.child(depth)?;
                typed(Node::MapEntries(Box::new(t.node), op == 102), Ty::List)
            }
            122 => {
                // Loop variables exist only inside CDT path expressions; elsewhere they are
                // unknown, as on the server.
                self.expect_args(argc, 2)?;
                let ty = Ty::from_wire(self.uint()?).ok_or(bad("invalid loop variable type"))?;
                let idx = self.uint()?;
                if idx >= 3 || (idx == 2 && ty != Ty::Int) {
                    return Err(bad("invalid loop variable"));
                }
                typed(Node::Unknown, ty)
            }
            123 => self.cond(argc, depth)?,
            124 => {
                self.expect_args(argc, 1)?;
                let name = self.raw_str()?;
                let def = self
                    .scope
                    .iter()
                    .rev()
                    .find(|d| d.name == name)
                    .ok_or(bad("undefined variable"))?;
                let ty = def.ty.ok_or(bad("variable used in its own definition"))?;
                typed(Node::Var(def.slot), ty)
            }
            125 => self.let_(argc, depth)?,
            126 => {
                self.expect_args(argc, 1)?;
                if !matches!(self.r.peek(), Some(0x90..=0x9f | 0xdc | 0xdd)) {
                    return Err(bad("quoted value must be a list"));
                }
                let raw = self.r.element().map_err(|_| bad("malformed list value"))?;
                msgpack::decode(raw).map_err(|_| bad("malformed list value"))?;
                typed(Node::Bytes(Ty::List, raw.to_vec()), Ty::List)
            }
            127 => self.call(argc, depth)?,
            _ => return Err(bad("unknown expression op code")),
        })
    }

    fn bin_name(&mut self) -> Result<Vec<u8>, DataError> {
        let name = self.raw_str()?;
        if name.len() > BIN_NAME_MAX_BYTES {
            return Err(bad("bin name too long"));
        }
        Ok(name.to_vec())
    }

    fn cond(&mut self, argc: usize, depth: usize) -> Result<Typed, DataError> {
        if argc < 3 || argc.is_multiple_of(2) {
            return Err(bad("cond needs condition/value pairs and a default"));
        }
        let mut ty: Option<Ty> = None;
        let mut cases = Vec::with_capacity(argc / 2);
        for _ in 0..argc / 2 {
            let c = self.child(depth)?;
            if c.ty != Ty::Bool {
                return Err(bad("cond condition is not a boolean"));
            }
            let v = self.child(depth)?;
            if !v.is_unknown {
                if ty.is_some_and(|t| t != v.ty) {
                    return Err(bad("cond branches have different types"));
                }
                ty = Some(v.ty);
            }
            cases.push((c.node, v.node));
        }
        let d = self.child(depth)?;
        let ty = match ty {
            None => d.ty,
            Some(t) if d.is_unknown || d.ty == t => t,
            Some(_) => return Err(bad("cond default has a different type")),
        };
        Ok(typed(Node::Cond(cases, Box::new(d.node)), ty))
    }

    fn let_(&mut self, argc: usize, depth: usize) -> Result<Typed, DataError> {
        if argc < 3 || argc.is_multiple_of(2) {
            return Err(bad("let needs name/value pairs and a scope expression"));
        }
        let scope_len = self.scope.len();
        let mut defs = Vec::with_capacity(argc / 2);
        for _ in 0..argc / 2 {
            let name = self.raw_str()?;
            let valid = name
                .first()
                .is_some_and(|c| *c == b'_' || c.is_ascii_alphabetic())
                && name.iter().all(|c| *c == b'_' || c.is_ascii_alphanumeric());
            if !valid {
                return Err(bad("illegal variable name"));
            }
            if self.scope.iter().any(|d| d.name == name) {
                return Err(bad("duplicate variable name"));
            }
            let slot = self.slots;
            self.slots += 1;
            self.slots_max = self.slots_max.max(self.slots);
            self.scope.push(VarDef {
                name: name.to_vec(),
                slot,
                ty: None,
            });
            let v = self.child(depth)?;
            if let Some(d) = self.scope.last_mut() {
                d.ty = Some(v.ty);
            }
            defs.push((slot, v.node));
        }
        let body = self.child(depth)?;
        self.slots -= self.scope.len() - scope_len;
        self.scope.truncate(scope_len);
        Ok(Typed {
            node: Node::Let(defs, Box::new(body.node)),
            ty: body.ty,
            is_unknown: false,
        })
    }

    fn call(&mut self, argc: usize, depth: usize) -> Result<Typed, DataError> {
        self.expect_args(argc, 4)?;
        let ty = Ty::from_wire(self.uint()?).ok_or(bad("invalid call result type"))?;
        let system = self.uint()?;
        let modify = system & 0x40 != 0;
        match system & !0x40 {
            0 => {}
            1 => return Err(DataError::Unsupported("bit expressions")),
            2 => return Err(DataError::Unsupported("HLL expressions")),
            _ => return Err(bad("invalid call system type")),
        }
        let Head::Array(mut n) = self.head()? else {
            return Err(bad("call op must be an array"));
        };
        if n == 0 {
            return Err(bad("empty call op"));
        }
        let mut op = self.int()?;
        let mut ctx = None;
        if op == 0xff {
            if n != 3 {
                return Err(bad("malformed call context"));
            }
            ctx = Some(
                self.r
                    .element()
                    .map_err(|_| bad("malformed call context"))?
                    .to_vec(),
            );
            let Head::Array(inner) = self.head()? else {
                return Err(bad("call op must be an array"));
            };
            if inner == 0 {
                return Err(bad("empty call op"));
            }
            n = inner;
            op = self.int()?;
        } else if op == 0xfe {
            return Err(DataError::Unsupported("CDT path expressions"));
        }
        if n as usize > self.r.remaining() + 1 {
            return Err(bad("call op count exceeds its bytes"));
        }
        let mut args = Vec::with_capacity(n as usize - 1);
        for _ in 1..n {
            if matches!(self.r.peek(), Some(0x90..=0x9f | 0xdc | 0xdd)) {
                args.push(CallArg::Exp(self.child(depth)?.node));
            } else {
                let raw = self
                    .r
                    .element()
                    .map_err(|_| bad("malformed call argument"))?;
                args.push(CallArg::Raw(raw.to_vec()));
            }
        }
        let bin = self.child(depth)?;
        if !matches!(bin.ty, Ty::List | Ty::Map | Ty::Nil) {
            return Err(bad("CDT call needs a list or map"));
        }
        Ok(typed(
            Node::Call(Box::new(Call {
                ty,
                modify,
                ctx,
                op,
                args,
                bin: bin.node,
            })),
            ty,
        ))
    }
}
