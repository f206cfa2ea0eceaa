//! A small pickle interpreter for the opcodes `torch.save` writes, and a writer for the same
//! subset.
//!
//! Python's pickle format is a program for a stack machine: opcodes push values, build
//! tuples, lists and dicts from them, and *call* globals (`REDUCE`), which is how a pickle
//! runs arbitrary code. This interpreter imports and runs nothing: a global is just its
//! name ([`Global`]), and the calls a file makes are answered by a [`Host`], which builds its
//! own objects ([`Value::Object`]). This module knows nothing of what the globals mean:
//! `torch.rs` is the host for `torch.save` files.
//!
//! The interpreter covers protocols 2 to 5 without their text-mode (protocol 0) opcodes,
//! and never panics on malformed input: every read is bounds-checked, values nest at most
//! [`MAX_DEPTH`] levels, and the memory it holds stays in proportion to the input. Every
//! value carries its nesting depth and its weight (roughly the bytes it takes), known when
//! it is built, so no check walks a value; copies made by memo lookups are paid for, before
//! they are made, from a budget proportional to the input. So a few kilobytes of opcodes
//! cannot make it hold gigabytes, nor take quadratic time.

use std::collections::HashMap;
use std::mem::size_of;

/// Errors of this module are plain messages; `pth.rs` adds the file they belong to.
pub(super) type PResult<T> = std::result::Result<T, String>;

/// How deeply values may nest (a state dict needs 4 levels: dict, tensor args, shape tuple).
pub(super) const MAX_DEPTH: usize = 64;

/// A Python object as the interpreter sees it; `O` is what the host makes of calls.
///
/// Booleans and floats are kept (and shown by `Debug`) although a state dict never reads
/// them: they are a tensor's `requires_grad` and the like.
#[derive(Clone, Debug)]
#[allow(dead_code)]
pub(super) enum Value<O> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value<O>>),
    List(Vec<Value<O>>),
    /// A `dict` or `collections.OrderedDict`: pairs in insertion order.
    Dict(Vec<(Value<O>, Value<O>)>),
    /// A class or function the file names; never imported.
    Global(Global),
    /// Something the host built: a storage, a tensor.
    Object(O),
}

/// What a host's objects must tell the interpreter.
pub(super) trait Object: Clone {
    /// The Python type name, for error messages.
    fn kind(&self) -> &'static str;
    /// Roughly how many bytes it holds beyond the `Value` that holds it.
    fn weight(&self) -> usize;
}

/// `module.name`, as written by the `GLOBAL` and `STACK_GLOBAL` opcodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Global {
    pub module: String,
    pub name: String,
}

impl Global {
    /// Whether this is `module.name`.
    pub fn is(&self, module: &str, name: &str) -> bool {
        self.module == module && self.name == name
    }
}

impl std::fmt::Display for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

impl<O: Object> Value<O> {
    /// The Python type name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "class or function",
            Value::Object(o) => o.kind(),
        }
    }

    /// Roughly how many bytes this value takes, without what it contains.
    fn own_weight(&self) -> usize {
        size_of::<Self>()
            + match self {
                Value::Str(s) => s.len(),
                Value::Bytes(b) => b.len(),
                Value::Global(g) => g.module.len() + g.name.len(),
                Value::Object(o) => o.weight(),
                _ => 0,
            }
    }
}

/// A value with its nesting depth (0 for scalars) and weight, so that neither is computed
/// by walking it again.
struct Held<O> {
    value: Value<O>,
    depth: usize,
    weight: usize,
}

impl<O: Object> Held<O> {
    /// A value that holds no other value.
    fn scalar(value: Value<O>) -> Self {
        Self {
            weight: value.own_weight(),
            value,
            depth: 0,
        }
    }

    /// A tuple or list of `items`.
    fn container(make: fn(Vec<Value<O>>) -> Value<O>, items: Vec<Held<O>>) -> PResult<Self> {
        let depth = 1 + items.iter().map(|h| h.depth).max().unwrap_or(0);
        let weight = size_of::<Value<O>>() + items.iter().map(|h| h.weight).sum::<usize>();
        check_depth(depth)?;
        Ok(Self {
            value: make(items.into_iter().map(|h| h.value).collect()),
            depth,
            weight,
        })
    }

    /// Measures a value the host returned, by walking it once: host results are small, or
    /// made of arguments whose copies the budget already paid for.
    fn measured(value: Value<O>) -> PResult<Self> {
        fn measure<O: Object>(value: &Value<O>, level: usize) -> PResult<(usize, usize)> {
            check_depth(level)?;
            let items: Vec<&Value<O>> = match value {
                Value::Tuple(items) | Value::List(items) => items.iter().collect(),
                Value::Dict(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => return Ok((0, value.own_weight())),
            };
            let (mut depth, mut weight) = (1, value.own_weight());
            for item in items {
                let (d, w) = measure(item, level + 1)?;
                (depth, weight) = (depth.max(d + 1), weight + w);
            }
            Ok((depth, weight))
        }
        let (depth, weight) = measure(&value, 0)?;
        check_depth(depth)?;
        Ok(Self {
            value,
            depth,
            weight,
        })
    }
}

fn check_depth(depth: usize) -> PResult<()> {
    if depth > MAX_DEPTH {
        return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
    }
    Ok(())
}

/// What the file's globals mean. The interpreter asks; it never imports anything.
pub(super) trait Host {
    /// The objects calls build.
    type Object: Object;
    /// `REDUCE` and `NEWOBJ`: the value of `func(*args)`.
    fn call(
        &mut self,
        func: &Global,
        args: Vec<Value<Self::Object>>,
    ) -> PResult<Value<Self::Object>>;
    /// `BINPERSID`: the object a persistent id stands for.
    fn persistent_load(&mut self, pid: Value<Self::Object>) -> PResult<Value<Self::Object>>;
    /// `BUILD`: `inst` after `inst.__setstate__(state)`, made of `inst` and `state` only.
    fn build(
        &mut self,
        inst: Value<Self::Object>,
        state: Value<Self::Object>,
    ) -> PResult<Value<Self::Object>>;
}

/// Runs the pickle `data` and returns the object it builds. `limit` caps the bytes the
/// interpreter may allocate along the way (see [`Machine::charge`]).
pub(super) fn load<H: Host>(data: &[u8], host: &mut H, limit: usize) -> PResult<Value<H::Object>> {
    Ok(load_prefix(data, host, limit)?.0)
}

/// [`load`] for a pickle followed by other data: also returns where the pickle ends (just
/// after its `STOP`), as PyTorch's legacy format writes several pickles in a row.
pub(super) fn load_prefix<H: Host>(
    data: &[u8],
    host: &mut H,
    limit: usize,
) -> PResult<(Value<H::Object>, usize)> {
    let mut machine = Machine::new(data, host, limit);
    let value = machine.run()?;
    Ok((value, machine.input.pos))
}

/// What every "the pickle ends early" error starts with, so that a reader of a stream can
/// tell a pickle it has not read whole from a damaged one.
pub(super) const ENDS_EARLY: &str = "the pickle ends early";

// Opcodes, named as in Python's `pickle.py`.
const MARK: u8 = b'(';
const STOP: u8 = b'.';
const POP: u8 = b'0';
const POP_MARK: u8 = b'1';
const BINFLOAT: u8 = b'G';
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const NONE: u8 = b'N';
const BINPERSID: u8 = b'Q';
const REDUCE: u8 = b'R';
const BINSTRING: u8 = b'T';
const SHORT_BINSTRING: u8 = b'U';
const BINUNICODE: u8 = b'X';
const APPEND: u8 = b'a';
const BUILD: u8 = b'b';
const GLOBAL: u8 = b'c';
const DICT: u8 = b'd';
const EMPTY_DICT: u8 = b'}';
const APPENDS: u8 = b'e';
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';
const LIST: u8 = b'l';
const EMPTY_LIST: u8 = b']';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const SETITEM: u8 = b's';
const TUPLE: u8 = b't';
const EMPTY_TUPLE: u8 = b')';
const SETITEMS: u8 = b'u';
const PROTO: u8 = 0x80;
const NEWOBJ: u8 = 0x81;
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
const STACK_GLOBAL: u8 = 0x93;
const MEMOIZE: u8 = 0x94;
const FRAME: u8 = 0x95;

/// A stack entry, with the memo indices that name it: in Python a memo entry *is* the object
/// on the stack, so containers filled after `BINPUT` must read back filled. An entry's memo
/// indices get its final value when it leaves the stack.
struct Slot<O> {
    held: Held<O>,
    memo: Vec<u32>,
}

enum Memo<O> {
    Value(Held<O>),
    /// Still on the stack, at this position.
    OnStack(usize),
}

struct Machine<'a, H: Host> {
    input: Input<'a>,
    host: &'a mut H,
    stack: Vec<Slot<H::Object>>,
    /// Stack lengths at each open `MARK`.
    marks: Vec<usize>,
    memo: HashMap<u32, Memo<H::Object>>,
    /// Bytes that memo copies may still take: proportional to the input.
    budget: usize,
    /// Bytes that everything else the pickle builds may still take (see [`Machine::charge`]).
    allowance: usize,
}

/// The bytes of memo copies a pickle of `input_len` bytes may make: a small floor, then 64
/// per byte of input (`torch.save` pickles copy a few times their size, in memoized globals
/// and tensors).
fn copy_budget(input_len: usize) -> usize {
    (4usize << 20).saturating_add(input_len.saturating_mul(64))
}

const TOO_MANY_COPIES: &str =
    "the pickle copies far more data than it holds; the file is damaged or crafted";

/// The bytes a `MARK` costs.
const BOOKKEEPING: usize = 16;

impl<'a, H: Host> Machine<'a, H> {
    fn new(data: &'a [u8], host: &'a mut H, limit: usize) -> Self {
        Self {
            input: Input { data, pos: 0 },
            host,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            budget: copy_budget(data.len()),
            allowance: limit,
        }
    }

    /// Pays `bytes` from the allowance, before they are allocated. Every value pushed, every
    /// `MARK`, memo entry and copy is paid for and nothing is paid back, so what the
    /// interpreter holds at any time (its stack and memo, with their spare capacity) stays
    /// below the allowance, whatever opcodes the file repeats: a few kilobytes of `NONE`
    /// or `MARK` opcodes, inflated from a compressed record, cannot take gigabytes.
    fn charge(&mut self, bytes: usize) -> PResult<()> {
        // Vectors grow by doubling: count the spare capacity too.
        let bytes = bytes.saturating_mul(2);
        self.allowance = self.allowance.checked_sub(bytes).ok_or_else(|| {
            "the pickle builds more values than a state dict of this file's size needs; the \
             file is damaged or crafted"
                .to_string()
        })?;
        Ok(())
    }

    fn run(&mut self) -> PResult<Value<H::Object>> {
        loop {
            let at = self.input.pos;
            let op = self.input.u8()?;
            if op == STOP {
                // The result leaves the machine, and its memo with it: no copy needed.
                let top = self.top_mut().map_err(|e| format!("at STOP: {e}"))?;
                return Ok(std::mem::replace(&mut top.held.value, Value::None));
            }
            self.step(op)
                .map_err(|e| format!("at byte {at} (opcode 0x{op:02x}): {e}"))?;
        }
    }

    fn step(&mut self, op: u8) -> PResult<()> {
        match op {
            PROTO => {
                let protocol = self.input.u8()?;
                if protocol > 5 {
                    return Err(format!("pickle protocol {protocol} is newer than 5"));
                }
            }
            FRAME => {
                self.input.take(8)?; // frames only group opcodes: the length is not needed
            }
            MARK => {
                self.charge(BOOKKEEPING)?;
                self.marks.push(self.stack.len())
            }
            POP => drop(self.pop()?),
            POP_MARK => drop(self.pop_mark()?),
            NONE => self.push(Value::None)?,
            NEWTRUE => self.push(Value::Bool(true))?,
            NEWFALSE => self.push(Value::Bool(false))?,
            BININT => {
                let v = i32::from_le_bytes(self.input.array()?);
                self.push(Value::Int(v.into()))?
            }
            BININT1 => {
                let v = self.input.u8()?;
                self.push(Value::Int(v.into()))?
            }
            BININT2 => {
                let v = u16::from_le_bytes(self.input.array()?);
                self.push(Value::Int(v.into()))?
            }
            LONG1 => {
                let n = self.input.u8()?;
                let v = decode_long(self.input.take(n.into())?)?;
                self.push(Value::Int(v))?
            }
            LONG4 => {
                let n = self.input.len_u32()?;
                let v = decode_long(self.input.take(n)?)?;
                self.push(Value::Int(v))?
            }
            BINFLOAT => {
                let v = f64::from_be_bytes(self.input.array()?);
                self.push(Value::Float(v))?
            }
            SHORT_BINUNICODE => {
                let n = self.input.u8()?;
                self.push_str(n.into())?
            }
            BINUNICODE => {
                let n = self.input.len_u32()?;
                self.push_str(n)?
            }
            BINUNICODE8 => {
                let n = self.input.len_u64()?;
                self.push_str(n)?
            }
            // Python 2 `str`, as in files written by Python 2; torch reads them as text too.
            SHORT_BINSTRING => {
                let n = self.input.u8()?;
                self.push_str(n.into())?
            }
            BINSTRING => {
                let n = self.input.len_u32()?;
                self.push_str(n)?
            }
            SHORT_BINBYTES => {
                let n = self.input.u8()?;
                self.push_bytes(n.into())?
            }
            BINBYTES => {
                let n = self.input.len_u32()?;
                self.push_bytes(n)?
            }
            BINBYTES8 => {
                let n = self.input.len_u64()?;
                self.push_bytes(n)?
            }
            EMPTY_TUPLE => self.push(Value::Tuple(Vec::new()))?,
            TUPLE1..=TUPLE3 => {
                let n = usize::from(op - TUPLE1) + 1;
                let items = self.pop_n(n)?;
                self.push_held(Held::container(Value::Tuple, items)?)?
            }
            TUPLE => {
                let items = self.pop_mark()?;
                self.push_held(Held::container(Value::Tuple, items)?)?
            }
            EMPTY_LIST => self.push(Value::List(Vec::new()))?,
            LIST => {
                let items = self.pop_mark()?;
                self.push_held(Held::container(Value::List, items)?)?
            }
            APPEND => {
                let item = self.pop()?;
                self.extend_list(vec![item])?
            }
            APPENDS => {
                let items = self.pop_mark()?;
                self.extend_list(items)?
            }
            EMPTY_DICT => self.push(Value::Dict(Vec::new()))?,
            DICT => {
                let items = self.pop_mark()?;
                self.push(Value::Dict(Vec::new()))?;
                self.extend_dict(items)?
            }
            SETITEM => {
                let items = self.pop_n(2)?;
                self.extend_dict(items)?
            }
            SETITEMS => {
                let items = self.pop_mark()?;
                self.extend_dict(items)?
            }
            GLOBAL => {
                let module = self.input.line()?;
                let name = self.input.line()?;
                self.push(Value::Global(Global { module, name }))?
            }
            STACK_GLOBAL => {
                let name = self.pop_str("STACK_GLOBAL name")?;
                let module = self.pop_str("STACK_GLOBAL module")?;
                self.push(Value::Global(Global { module, name }))?
            }
            REDUCE | NEWOBJ => {
                let args = self.pop()?;
                let func = self.pop()?;
                self.call(func.value, args.value)?
            }
            BUILD => {
                let state = self.pop()?;
                let slot = self.top_mut()?;
                let inst = std::mem::replace(&mut slot.held.value, Value::None);
                let (depth, weight) = (slot.held.depth, slot.held.weight);
                let built = self.host.build(inst, state.value)?;
                // The host builds from the instance and the state only (see `Host::build`).
                let depth = depth.max(state.depth + 1);
                check_depth(depth)?;
                self.top_mut()?.held = Held {
                    value: built,
                    depth,
                    weight: weight.saturating_add(state.weight),
                };
            }
            BINPERSID => {
                let pid = self.pop()?;
                let object = self.host.persistent_load(pid.value)?;
                self.push_held(Held::measured(object)?)?
            }
            BINPUT => {
                let i = self.input.u8()?;
                self.put(i.into())?
            }
            LONG_BINPUT => {
                let i = u32::from_le_bytes(self.input.array()?);
                self.put(i)?
            }
            MEMOIZE => {
                let i = u32::try_from(self.memo.len()).map_err(|_| "memo is full")?;
                self.put(i)?
            }
            BINGET => {
                let i = self.input.u8()?;
                self.get(i.into())?
            }
            LONG_BINGET => {
                let i = u32::from_le_bytes(self.input.array()?);
                self.get(i)?
            }
            _ => {
                return Err(format!(
                    "unsupported pickle opcode 0x{op:02x}: torch.save never writes it \
                     (is this a PyTorch checkpoint?)"
                ))
            }
        }
        Ok(())
    }

    fn push(&mut self, value: Value<H::Object>) -> PResult<()> {
        self.push_held(Held::scalar(value))
    }

    /// Pushes `held`, paying for its slot and for what it holds beyond the values it was
    /// built from (a container's items were paid for when they were pushed).
    fn push_held(&mut self, held: Held<H::Object>) -> PResult<()> {
        self.charge(size_of::<Slot<H::Object>>() + held.value.own_weight())?;
        self.stack.push(Slot {
            held,
            memo: Vec::new(),
        });
        Ok(())
    }

    fn push_str(&mut self, len: usize) -> PResult<()> {
        let bytes = self.input.take(len)?;
        let text = std::str::from_utf8(bytes).map_err(|e| format!("a string is not UTF-8: {e}"))?;
        self.push(Value::Str(text.to_owned()))
    }

    fn push_bytes(&mut self, len: usize) -> PResult<()> {
        self.charge(len)?;
        let bytes = self.input.take(len)?.to_vec();
        self.push(Value::Bytes(bytes))
    }

    /// The lowest stack position the current `MARK` lets opcodes touch.
    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> PResult<Held<H::Object>> {
        if self.stack.len() <= self.floor() {
            return Err("stack underflow: the pickle is damaged".into());
        }
        let slot = self
            .stack
            .pop()
            .ok_or("stack underflow: the pickle is damaged")?;
        self.retire(slot)
    }

    /// Pops `n` values, returned in stack order.
    fn pop_n(&mut self, n: usize) -> PResult<Vec<Held<H::Object>>> {
        let mut items = (0..n).map(|_| self.pop()).collect::<PResult<Vec<_>>>()?;
        items.reverse();
        Ok(items)
    }

    /// Pops everything above the last `MARK`, and the mark.
    fn pop_mark(&mut self) -> PResult<Vec<Held<H::Object>>> {
        let at = self
            .marks
            .pop()
            .ok_or("an opcode needs a MARK that is missing")?;
        let slots = self.stack.split_off(at.min(self.stack.len()));
        slots.into_iter().map(|slot| self.retire(slot)).collect()
    }

    /// A slot leaves the stack: its memo indices keep a copy of its final value.
    fn retire(&mut self, slot: Slot<H::Object>) -> PResult<Held<H::Object>> {
        for index in slot.memo {
            self.charge(size_of::<(u32, Memo<H::Object>)>())?;
            let copy = self.copy(&slot.held)?;
            self.memo.insert(index, Memo::Value(copy));
        }
        Ok(slot.held)
    }

    fn pop_str(&mut self, what: &str) -> PResult<String> {
        match self.pop()?.value {
            Value::Str(s) => Ok(s),
            other => Err(format!("{what} is a {}, not a str", other.kind())),
        }
    }

    fn top_mut(&mut self) -> PResult<&mut Slot<H::Object>> {
        if self.stack.len() <= self.floor() {
            return Err("stack underflow: the pickle is damaged".into());
        }
        self.stack
            .last_mut()
            .ok_or_else(|| "stack underflow".into())
    }

    fn call(&mut self, func: Value<H::Object>, args: Value<H::Object>) -> PResult<()> {
        let Value::Global(func) = func else {
            return Err(format!(
                "the pickle calls a {}, not a class or function",
                func.kind()
            ));
        };
        let Value::Tuple(args) = args else {
            return Err(format!(
                "{func} is called with a {}, not a tuple",
                args.kind()
            ));
        };
        let result = self.host.call(&func, args)?;
        self.push_held(Held::measured(result)?)
    }

    /// The top slot, its depth and weight grown by `items` that go into it.
    fn grow_top(&mut self, items: &[Held<H::Object>]) -> PResult<&mut Slot<H::Object>> {
        let slot = self.top_mut()?;
        for item in items {
            slot.held.depth = slot.held.depth.max(item.depth + 1);
            slot.held.weight = slot.held.weight.saturating_add(item.weight);
        }
        check_depth(slot.held.depth)?;
        Ok(slot)
    }

    fn extend_list(&mut self, items: Vec<Held<H::Object>>) -> PResult<()> {
        let kind = self.top_mut()?.held.value.kind();
        if kind != "list" {
            return Err(format!("APPEND to a {kind}, not a list"));
        }
        let slot = self.grow_top(&items)?;
        if let Value::List(list) = &mut slot.held.value {
            list.extend(items.into_iter().map(|h| h.value));
        }
        Ok(())
    }

    /// `SETITEM(S)`: `items` alternate keys and values. A repeated key keeps the place of its
    /// first occurrence, as in a Python dict; `StateDict::insert` does that when converting.
    fn extend_dict(&mut self, items: Vec<Held<H::Object>>) -> PResult<()> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with a key but no value".into());
        }
        let kind = self.top_mut()?.held.value.kind();
        if kind != "dict" {
            return Err(format!("SETITEM on a {kind}, not a dict"));
        }
        let slot = self.grow_top(&items)?;
        if let Value::Dict(pairs) = &mut slot.held.value {
            let mut items = items.into_iter().map(|h| h.value);
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                pairs.push((key, value));
            }
        }
        Ok(())
    }

    fn put(&mut self, index: u32) -> PResult<()> {
        if let Some(Memo::OnStack(pos)) = self.memo.get(&index) {
            let pos = *pos;
            if let Some(slot) = self.stack.get_mut(pos) {
                slot.memo.retain(|&i| i != index);
            }
        }
        let pos = self
            .stack
            .len()
            .checked_sub(1)
            .filter(|&p| p >= self.floor());
        let slot = pos.and_then(|p| self.stack.get_mut(p));
        let (Some(pos), Some(slot)) = (pos, slot) else {
            return Err("BINPUT with nothing to memoize".into());
        };
        slot.memo.push(index);
        self.charge(size_of::<(u32, Memo<H::Object>)>())?;
        self.memo.insert(index, Memo::OnStack(pos));
        Ok(())
    }

    fn get(&mut self, index: u32) -> PResult<()> {
        let held = match self.memo.get(&index) {
            Some(Memo::Value(held)) => held,
            Some(Memo::OnStack(pos)) => &self.stack.get(*pos).ok_or("memo out of sync")?.held,
            None => return Err(format!("memo entry {index} is read before it is written")),
        };
        self.budget = self
            .budget
            .checked_sub(held.weight)
            .ok_or(TOO_MANY_COPIES)?;
        let copy = Held {
            value: held.value.clone(),
            depth: held.depth,
            weight: held.weight,
        };
        self.charge(copy.weight).map_err(|_| TOO_MANY_COPIES)?;
        self.push_held(copy)
    }

    /// A copy of `held`, paid for from the budget before it is made.
    fn copy(&mut self, held: &Held<H::Object>) -> PResult<Held<H::Object>> {
        self.budget = self
            .budget
            .checked_sub(held.weight)
            .ok_or(TOO_MANY_COPIES)?;
        self.charge(held.weight).map_err(|_| TOO_MANY_COPIES)?;
        Ok(Held {
            value: held.value.clone(),
            depth: held.depth,
            weight: held.weight,
        })
    }
}

/// A little-endian two's-complement integer (`LONG1`, `LONG4`) that must fit in an `i64`.
fn decode_long(bytes: &[u8]) -> PResult<i64> {
    if bytes.len() > 8 {
        return Err(format!(
            "an integer of {} bytes does not fit in 64 bits",
            bytes.len()
        ));
    }
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let mut buf = [if negative { 0xff } else { 0 }; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buf))
}

/// The pickle bytes, read with bounds checks.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> PResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len());
        let end = end.ok_or_else(|| {
            format!(
                "{ENDS_EARLY}: {n} bytes needed at byte {}, {} left (truncated file?)",
                self.pos,
                self.data.len() - self.pos.min(self.data.len())
            )
        })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> PResult<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn len_u32(&mut self) -> PResult<usize> {
        usize::try_from(u32::from_le_bytes(self.array()?)).map_err(|e| e.to_string())
    }

    fn len_u64(&mut self) -> PResult<usize> {
        usize::try_from(u64::from_le_bytes(self.array()?)).map_err(|e| e.to_string())
    }

    /// A `\n`-terminated UTF-8 line, as `GLOBAL` writes module and name.
    fn line(&mut self) -> PResult<String> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("the pickle ends inside a GLOBAL name (truncated file?)")?;
        let line = self.take(len + 1)?;
        let text = std::str::from_utf8(&line[..len]).map_err(|_| "a GLOBAL name is not UTF-8")?;
        Ok(text.to_owned())
    }
}

/// Writes pickle protocol 2, the protocol `torch.save` uses, one opcode per method.
/// Globals are memoized, so that each is written once, as Python's pickler does.
pub(super) struct Pickler {
    out: Vec<u8>,
    globals: HashMap<(&'static str, &'static str), u32>,
    next_memo: u32,
}

impl Pickler {
    /// A pickle that starts with `PROTO 2`.
    pub fn new() -> Self {
        Self {
            out: vec![PROTO, 2],
            globals: HashMap::new(),
            next_memo: 0,
        }
    }

    /// `module.name`, by reference.
    pub fn global(&mut self, module: &'static str, name: &'static str) {
        if let Some(&index) = self.globals.get(&(module, name)) {
            self.memo_get(index);
            return;
        }
        self.out.push(GLOBAL);
        for part in [module, name] {
            self.out.extend_from_slice(part.as_bytes());
            self.out.push(b'\n');
        }
        let index = self.memo_put();
        self.globals.insert((module, name), index);
    }

    pub fn str(&mut self, s: &str) {
        // A Rust string is shorter than 4 GiB in any checkpoint we write; longer ones need
        // BINUNICODE8, which protocol 2 lacks.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        self.out.push(BINUNICODE);
        self.out.extend_from_slice(&len.to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }

    /// An integer, in the shortest form Python's pickler uses.
    pub fn int(&mut self, v: u64) {
        if let Ok(v) = u8::try_from(v) {
            self.out.extend_from_slice(&[BININT1, v]);
        } else if let Ok(v) = u16::try_from(v) {
            self.out.push(BININT2);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.out.push(BININT);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            // LONG1: little-endian two's complement, with a 0 byte if the top bit is set.
            let mut bytes = v.to_le_bytes().to_vec();
            while bytes.len() > 1 && bytes[bytes.len() - 1] == 0 && bytes[bytes.len() - 2] < 0x80 {
                bytes.pop();
            }
            if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                bytes.push(0);
            }
            self.out.extend_from_slice(&[LONG1, bytes.len() as u8]);
            self.out.extend_from_slice(&bytes);
        }
    }

    pub fn bool(&mut self, v: bool) {
        self.out.push(if v { NEWTRUE } else { NEWFALSE });
    }

    /// A tuple of integers (a shape or strides).
    pub fn int_tuple(&mut self, items: &[usize]) {
        let short = items.len() <= 3;
        if !short {
            self.mark();
        }
        for &v in items {
            self.int(v as u64);
        }
        match items.len() {
            0 => self.out.push(EMPTY_TUPLE),
            1 => self.out.push(TUPLE1),
            2 => self.out.push(TUPLE2),
            3 => self.out.push(TUPLE3),
            _ => self.out.push(TUPLE),
        }
    }

    pub fn mark(&mut self) {
        self.out.push(MARK);
    }

    /// Closes a tuple opened by [`Pickler::mark`].
    pub fn tuple(&mut self) {
        self.out.push(TUPLE);
    }

    pub fn empty_tuple(&mut self) {
        self.out.push(EMPTY_TUPLE);
    }

    pub fn reduce(&mut self) {
        self.out.push(REDUCE);
    }

    pub fn persistent_id(&mut self) {
        self.out.push(BINPERSID);
    }

    /// Closes a batch of key-value pairs opened by [`Pickler::mark`].
    pub fn setitems(&mut self) {
        self.out.push(SETITEMS);
    }

    /// Memoizes the object on top of the stack, as Python's pickler does for a dict before
    /// filling it.
    pub fn memo_put(&mut self) -> u32 {
        let index = self.next_memo;
        self.next_memo += 1;
        match u8::try_from(index) {
            Ok(i) => self.out.extend_from_slice(&[BINPUT, i]),
            Err(_) => {
                self.out.push(LONG_BINPUT);
                self.out.extend_from_slice(&index.to_le_bytes());
            }
        }
        index
    }

    fn memo_get(&mut self, index: u32) {
        match u8::try_from(index) {
            Ok(i) => self.out.extend_from_slice(&[BINGET, i]),
            Err(_) => {
                self.out.push(LONG_BINGET);
                self.out.extend_from_slice(&index.to_le_bytes());
            }
        }
    }

    /// Ends the pickle and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(STOP);
        self.out
    }
}
