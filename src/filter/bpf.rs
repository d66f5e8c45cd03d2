//! A classic-BPF interpreter in safe Rust.
//!
//! Runs the programs libpcap's compiler emits with the semantics of libpcap's own userland
//! `bpf_filter`: loads read the captured bytes (big-endian), `len` is the length on the wire,
//! a load outside the captured bytes or a division/modulo by zero ends the program with 0
//! (reject), and a nonzero return value means "accept".
//!
//! Invariants established by [`Program::new`] (so [`Program::run`] needs no other checks than
//! packet bounds): the program is non-empty and no longer than [`MAX_INSNS`]; every opcode is
//! known; every jump lands inside the program (jumps are forward only by construction); every
//! scratch-memory index is below [`MEMWORDS`]; the last instruction is a return, so execution
//! can only leave through a return.

use std::fmt;

/// Scratch memory words (BPF_MEMWORDS).
pub const MEMWORDS: usize = 16;

/// Longest program accepted (BPF_MAXINSNS in the kernels that bound it).
pub const MAX_INSNS: usize = 4096;

/// One instruction as `struct bpf_insn` stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl Insn {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }
}

/// Opcode fields (the values of libpcap's `bpf.h`), public so tests can build programs.
pub mod code {
    // Classes.
    pub const LD: u16 = 0x00;
    pub const LDX: u16 = 0x01;
    pub const ST: u16 = 0x02;
    pub const STX: u16 = 0x03;
    pub const ALU: u16 = 0x04;
    pub const JMP: u16 = 0x05;
    pub const RET: u16 = 0x06;
    pub const MISC: u16 = 0x07;
    // Load sizes.
    pub const W: u16 = 0x00;
    pub const H: u16 = 0x08;
    pub const B: u16 = 0x10;
    // Load modes.
    pub const IMM: u16 = 0x00;
    pub const ABS: u16 = 0x20;
    pub const IND: u16 = 0x40;
    pub const MEM: u16 = 0x60;
    pub const LEN: u16 = 0x80;
    pub const MSH: u16 = 0xa0;
    // ALU operations.
    pub const ADD: u16 = 0x00;
    pub const SUB: u16 = 0x10;
    pub const MUL: u16 = 0x20;
    pub const DIV: u16 = 0x30;
    pub const OR: u16 = 0x40;
    pub const AND: u16 = 0x50;
    pub const LSH: u16 = 0x60;
    pub const RSH: u16 = 0x70;
    pub const NEG: u16 = 0x80;
    pub const MOD: u16 = 0x90;
    pub const XOR: u16 = 0xa0;
    // Jumps.
    pub const JA: u16 = 0x00;
    pub const JEQ: u16 = 0x10;
    pub const JGT: u16 = 0x20;
    pub const JGE: u16 = 0x30;
    pub const JSET: u16 = 0x40;
    // Operand source.
    pub const K: u16 = 0x00;
    pub const X: u16 = 0x08;
    // Return value source.
    pub const A: u16 = 0x10;
    // Miscellaneous operations.
    pub const TAX: u16 = 0x00;
    pub const TXA: u16 = 0x80;
}

/// Why a program was refused at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidateError {
    Empty,
    TooLong(usize),
    UnknownOpcode { pc: usize, code: u16 },
    JumpOutOfRange { pc: usize },
    MemoryIndex { pc: usize, k: u32 },
    NoFinalReturn,
}

impl fmt::Display for ValidateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidateError::Empty => write!(f, "empty BPF program"),
            ValidateError::TooLong(n) => {
                write!(f, "BPF program of {n} instructions (at most {MAX_INSNS})")
            }
            ValidateError::UnknownOpcode { pc, code } => {
                write!(f, "unknown BPF opcode {code:#06x} at instruction {pc}")
            }
            ValidateError::JumpOutOfRange { pc } => {
                write!(f, "BPF jump out of the program at instruction {pc}")
            }
            ValidateError::MemoryIndex { pc, k } => {
                write!(
                    f,
                    "BPF scratch memory index {k} out of range at instruction {pc}"
                )
            }
            ValidateError::NoFinalReturn => write!(f, "BPF program does not end with a return"),
        }
    }
}

impl std::error::Error for ValidateError {}

/// Operand of an ALU or jump instruction.
#[derive(Clone, Copy, Debug)]
enum Src {
    K(u32),
    X,
}

#[derive(Clone, Copy, Debug)]
enum Size {
    Word,
    Half,
    Byte,
}

#[derive(Clone, Copy, Debug)]
enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Lsh,
    Rsh,
}

#[derive(Clone, Copy, Debug)]
enum Cond {
    Eq,
    Gt,
    Ge,
    Set,
}

/// A validated instruction; jump targets are absolute instruction indexes.
#[derive(Clone, Copy, Debug)]
enum Op {
    LdImm(u32),
    LdAbs(Size, u32),
    LdInd(Size, u32),
    LdMem(usize),
    LdLen,
    LdxImm(u32),
    LdxMem(usize),
    LdxLen,
    LdxMsh(u32),
    St(usize),
    Stx(usize),
    Alu(AluOp, Src),
    Neg,
    Ja(usize),
    Jmp(Cond, Src, usize, usize),
    RetK(u32),
    RetA,
    Tax,
    Txa,
}

/// A validated classic-BPF program, ready to run on packets.
#[derive(Clone, Debug)]
pub struct Program {
    ops: Vec<Op>,
}

impl Program {
    /// Checks and decodes `insns`; see the module invariants.
    pub fn new(insns: &[Insn]) -> Result<Program, ValidateError> {
        if insns.is_empty() {
            return Err(ValidateError::Empty);
        }
        if insns.len() > MAX_INSNS {
            return Err(ValidateError::TooLong(insns.len()));
        }
        let ops = insns
            .iter()
            .enumerate()
            .map(|(pc, insn)| decode(pc, insn, insns.len()))
            .collect::<Result<Vec<Op>, ValidateError>>()?;
        match ops.last() {
            Some(Op::RetK(_) | Op::RetA) => Ok(Program { ops }),
            _ => Err(ValidateError::NoFinalReturn),
        }
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Always false: validation refuses empty programs.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Runs the program over the captured bytes `data` of a frame `wire_len` bytes long on the
    /// wire; returns the program's return value (0 = reject).
    pub fn run(&self, data: &[u8], wire_len: u32) -> u32 {
        let mut a: u32 = 0;
        let mut x: u32 = 0;
        let mut mem = [0u32; MEMWORDS];
        let mut pc = 0usize;
        // Validation guarantees every jump target is in range and the last op returns, so
        // `get` only fails if that invariant were broken; rejecting is the safe answer then.
        while let Some(op) = self.ops.get(pc) {
            pc += 1;
            match *op {
                Op::LdImm(k) => a = k,
                Op::LdAbs(size, k) => match load(data, size, u64::from(k)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdInd(size, k) => match load(data, size, u64::from(x) + u64::from(k)) {
                    Some(v) => a = v,
                    None => return 0,
                },
                Op::LdMem(i) => a = mem.get(i).copied().unwrap_or(0),
                Op::LdLen => a = wire_len,
                Op::LdxImm(k) => x = k,
                Op::LdxMem(i) => x = mem.get(i).copied().unwrap_or(0),
                Op::LdxLen => x = wire_len,
                Op::LdxMsh(k) => match usize::try_from(k).ok().and_then(|k| data.get(k)) {
                    Some(b) => x = u32::from(b & 0x0f) << 2,
                    None => return 0,
                },
                Op::St(i) => {
                    if let Some(m) = mem.get_mut(i) {
                        *m = a;
                    }
                }
                Op::Stx(i) => {
                    if let Some(m) = mem.get_mut(i) {
                        *m = x;
                    }
                }
                Op::Alu(op, src) => {
                    let v = match src {
                        Src::K(k) => k,
                        Src::X => x,
                    };
                    match alu(op, a, v) {
                        Some(r) => a = r,
                        None => return 0,
                    }
                }
                Op::Neg => a = a.wrapping_neg(),
                Op::Ja(target) => pc = target,
                Op::Jmp(cond, src, jt, jf) => {
                    let v = match src {
                        Src::K(k) => k,
                        Src::X => x,
                    };
                    let taken = match cond {
                        Cond::Eq => a == v,
                        Cond::Gt => a > v,
                        Cond::Ge => a >= v,
                        Cond::Set => a & v != 0,
                    };
                    pc = if taken { jt } else { jf };
                }
                Op::RetK(k) => return k,
                Op::RetA => return a,
                Op::Tax => x = a,
                Op::Txa => a = x,
            }
        }
        0
    }
}

/// A big-endian load of `size` at byte `offset` of the captured bytes, `None` when any byte
/// of it lies outside them.
fn load(data: &[u8], size: Size, offset: u64) -> Option<u32> {
    let start = usize::try_from(offset).ok()?;
    let rest = data.get(start..)?;
    match size {
        Size::Word => rest.first_chunk::<4>().map(|b| u32::from_be_bytes(*b)),
        Size::Half => rest
            .first_chunk::<2>()
            .map(|b| u32::from(u16::from_be_bytes(*b))),
        Size::Byte => rest.first().map(|&b| u32::from(b)),
    }
}

/// One ALU operation; `None` for division or modulo by zero (the program then rejects).
/// Shifts by 32 or more give 0, as libpcap's interpreter does rather than C's undefined shift.
fn alu(op: AluOp, a: u32, v: u32) -> Option<u32> {
    Some(match op {
        AluOp::Add => a.wrapping_add(v),
        AluOp::Sub => a.wrapping_sub(v),
        AluOp::Mul => a.wrapping_mul(v),
        AluOp::Div => a.checked_div(v)?,
        AluOp::Mod => a.checked_rem(v)?,
        AluOp::And => a & v,
        AluOp::Or => a | v,
        AluOp::Xor => a ^ v,
        AluOp::Lsh => a.checked_shl(v).unwrap_or(0),
        AluOp::Rsh => a.checked_shr(v).unwrap_or(0),
    })
}

/// Decodes instruction `pc` of a program `len` instructions long, checking its operands.
fn decode(pc: usize, insn: &Insn, len: usize) -> Result<Op, ValidateError> {
    use code::*;
    let unknown = ValidateError::UnknownOpcode {
        pc,
        code: insn.code,
    };
    let k = insn.k;
    let mem_index = || {
        let i = k as usize;
        if i < MEMWORDS {
            Ok(i)
        } else {
            Err(ValidateError::MemoryIndex { pc, k })
        }
    };
    // A jump of `offset` from `pc` lands on pc + 1 + offset, which must be an instruction.
    let target = |offset: u64| {
        let t = pc as u64 + 1 + offset;
        if t < len as u64 {
            Ok(t as usize)
        } else {
            Err(ValidateError::JumpOutOfRange { pc })
        }
    };
    let size = |c: u16| match c & 0x18 {
        W => Ok(Size::Word),
        H => Ok(Size::Half),
        B => Ok(Size::Byte),
        _ => Err(unknown.clone()),
    };
    let src = |c: u16| if c & X != 0 { Src::X } else { Src::K(k) };
    let c = insn.code;
    if c > 0xff {
        return Err(unknown);
    }
    Ok(match c & 0x07 {
        LD => match c & 0xe0 {
            IMM if c & 0x18 == W => Op::LdImm(k),
            ABS => Op::LdAbs(size(c)?, k),
            IND => Op::LdInd(size(c)?, k),
            MEM if c & 0x18 == W => Op::LdMem(mem_index()?),
            LEN if c & 0x18 == W => Op::LdLen,
            _ => return Err(unknown),
        },
        LDX => match c {
            0x01 => Op::LdxImm(k),            // LDX W IMM
            0x61 => Op::LdxMem(mem_index()?), // LDX W MEM
            0x81 => Op::LdxLen,               // LDX W LEN
            0xb1 => Op::LdxMsh(k),            // LDX B MSH
            _ => return Err(unknown),
        },
        ST if c == ST => Op::St(mem_index()?),
        STX if c == STX => Op::Stx(mem_index()?),
        ALU => {
            let op = match c & 0xf0 {
                ADD => AluOp::Add,
                SUB => AluOp::Sub,
                MUL => AluOp::Mul,
                DIV => AluOp::Div,
                MOD => AluOp::Mod,
                AND => AluOp::And,
                OR => AluOp::Or,
                XOR => AluOp::Xor,
                LSH => AluOp::Lsh,
                RSH => AluOp::Rsh,
                NEG if c == ALU | NEG => return Ok(Op::Neg),
                _ => return Err(unknown),
            };
            Op::Alu(op, src(c))
        }
        JMP => {
            if c == JMP | JA {
                return Ok(Op::Ja(target(u64::from(k))?));
            }
            let cond = match c & 0xf0 {
                JEQ => Cond::Eq,
                JGT => Cond::Gt,
                JGE => Cond::Ge,
                JSET => Cond::Set,
                _ => return Err(unknown),
            };
            Op::Jmp(
                cond,
                src(c),
                target(u64::from(insn.jt))?,
                target(u64::from(insn.jf))?,
            )
        }
        RET => match c {
            0x06 => Op::RetK(k), // RET K
            0x16 => Op::RetA,    // RET A
            _ => return Err(unknown),
        },
        MISC => match c {
            0x07 => Op::Tax,
            0x87 => Op::Txa,
            _ => return Err(unknown),
        },
        _ => return Err(unknown),
    })
}
