//! A classic-BPF interpreter in safe Rust.
//!
//! Runs the programs libpcap's compiler emits with the semantics of libpcap's own userland
//! `bpf_filter`: loads read the captured bytes (big-endian), `len` is the length on the wire,
//! a load outside the captured bytes or a division/modulo by zero ends the program with 0
//! (reject), and a nonzero return value means "accept".
//!
//! Invariants established by [`Program::new`] (so [`Program::run`] needs no other checks than
//! packet bounds): the program is non-empty and no longer than [`MAX_INSNS`]; every opcode is
//! known; every jump lands inside the program; every scratch-memory index is below
//! [`MEMWORDS`]; the last instruction is a return, so execution can only leave through a return.
//!
//! Backward jumps: conditional jumps are forward only by construction (8-bit offsets), but
//! libpcap compiles `ip6 protochain` into a loop closed by an unconditional jump whose 32-bit
//! offset its own interpreter reads as signed. We do the same, and bound termination: each
//! backward jump is counted and a run taking more than `captured length + 1` of them rejects.
//! In libpcap's loop the state at each pass is set by the header offset it has reached, which
//! must lie inside the captured bytes (the loop leaves at the first out-of-bounds load); more
//! passes than that would revisit an offset and so loop forever in libpcap. The bound thus never
//! rejects a frame libpcap would accept, and no program can make us loop forever.

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
        let mut backward_jumps = 0usize;
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
                Op::Ja(target) => {
                    if target < pc {
                        backward_jumps += 1;
                        if backward_jumps > data.len() + 1 {
                            return 0;
                        }
                    }
                    pc = target;
                }
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
    let target = |offset: i64| {
        let t = pc as i64 + 1 + offset;
        if (0..len as i64).contains(&t) {
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
                // Signed, as libpcap reads it (see the module docs on backward jumps).
                return Ok(Op::Ja(target(i64::from(k as i32))?));
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
                target(i64::from(insn.jt))?,
                target(i64::from(insn.jf))?,
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

#[cfg(test)]
mod tests {
    use super::code::*;
    use super::*;

    fn stmt(code: u16, k: u32) -> Insn {
        Insn::new(code, 0, 0, k)
    }
    fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
        Insn::new(code, jt, jf, k)
    }
    fn ret_a() -> Insn {
        stmt(RET | A, 0)
    }
    fn run(insns: &[Insn], data: &[u8], wire_len: u32) -> u32 {
        Program::new(insns)
            .expect("valid program")
            .run(data, wire_len)
    }
    /// Runs `A = a; A = A op k` and returns A (or 0 on a fault).
    fn alu_k(op: u16, a: u32, k: u32) -> u32 {
        run(&[stmt(LD | IMM, a), stmt(ALU | op | K, k), ret_a()], &[], 0)
    }
    /// Runs `X = x; A = a; A = A op X` and returns A (or 0 on a fault).
    fn alu_x(op: u16, a: u32, x: u32) -> u32 {
        run(
            &[
                stmt(LDX | IMM, x),
                stmt(LD | IMM, a),
                stmt(ALU | op | X, 0),
                ret_a(),
            ],
            &[],
            0,
        )
    }

    const PKT: [u8; 8] = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];

    #[test]
    fn ret_k_and_ret_a() {
        assert_eq!(run(&[stmt(RET | K, 7)], &[], 0), 7);
        assert_eq!(run(&[stmt(RET | K, 0)], &[], 0), 0);
        assert_eq!(run(&[stmt(LD | IMM, 9), ret_a()], &[], 0), 9);
    }

    #[test]
    fn absolute_loads_are_big_endian() {
        assert_eq!(run(&[stmt(LD | W | ABS, 0), ret_a()], &PKT, 8), 0x1234_5678);
        assert_eq!(run(&[stmt(LD | H | ABS, 1), ret_a()], &PKT, 8), 0x3456);
        assert_eq!(run(&[stmt(LD | B | ABS, 7), ret_a()], &PKT, 8), 0xf0);
        assert_eq!(run(&[stmt(LD | W | ABS, 4), ret_a()], &PKT, 8), 0x9abc_def0);
    }

    #[test]
    fn out_of_bounds_loads_reject() {
        // Reads the captured bytes only, even when the wire length is larger.
        for insn in [
            stmt(LD | W | ABS, 5),
            stmt(LD | H | ABS, 7),
            stmt(LD | B | ABS, 8),
            stmt(LD | W | ABS, u32::MAX),
            stmt(LD | H | ABS, u32::MAX),
        ] {
            assert_eq!(run(&[insn, stmt(RET | K, 1)], &PKT, 1500), 0, "{insn:?}");
        }
    }

    #[test]
    fn indirect_loads_add_x() {
        let prog =
            |size: u16, x: u32, k: u32| [stmt(LDX | IMM, x), stmt(LD | size | IND, k), ret_a()];
        assert_eq!(run(&prog(W, 2, 1), &PKT, 8), 0x789a_bcde);
        assert_eq!(run(&prog(H, 6, 0), &PKT, 8), 0xdef0);
        assert_eq!(run(&prog(B, 3, 3), &PKT, 8), 0xde);
        assert_eq!(run(&prog(B, 4, 4), &PKT, 8), 0, "one past the end");
        assert_eq!(run(&prog(H, 7, 0), &PKT, 8), 0, "straddles the end");
        // X + k overflowing 32 bits must not wrap around to a valid offset.
        assert_eq!(run(&prog(B, u32::MAX, 2), &PKT, 8), 0);
        assert_eq!(run(&prog(W, 1, u32::MAX), &PKT, 8), 0);
    }

    #[test]
    fn len_loads_the_wire_length() {
        assert_eq!(run(&[stmt(LD | W | LEN, 0), ret_a()], &PKT, 1514), 1514);
        assert_eq!(
            run(
                &[stmt(LDX | W | LEN, 0), stmt(MISC | TXA, 0), ret_a()],
                &PKT,
                60
            ),
            60
        );
    }

    #[test]
    fn msh_loads_ip_header_length() {
        // 0x45: IPv4, IHL 5 words = 20 bytes.
        let ip = [0x00, 0x45, 0x00];
        assert_eq!(
            run(
                &[stmt(LDX | B | MSH, 1), stmt(MISC | TXA, 0), ret_a()],
                &ip,
                3
            ),
            20
        );
        assert_eq!(
            run(
                &[stmt(LDX | B | MSH, 0), stmt(MISC | TXA, 0), ret_a()],
                &[0xff],
                1
            ),
            60
        );
        assert_eq!(
            run(&[stmt(LDX | B | MSH, 3), stmt(RET | K, 1)], &ip, 3),
            0,
            "out of bounds"
        );
    }

    #[test]
    fn scratch_memory_store_and_load() {
        let prog = [
            stmt(LD | IMM, 11),
            stmt(ST, 0),
            stmt(LDX | IMM, 22),
            stmt(STX, 15),
            stmt(LD | MEM, 15),
            stmt(MISC | TAX, 0),
            stmt(LD | MEM, 0),
            stmt(ALU | ADD | X, 0),
            stmt(LDX | MEM, 0),
            stmt(ALU | ADD | X, 0),
            ret_a(),
        ];
        assert_eq!(run(&prog, &[], 0), 11 + 22 + 11);
        // Unwritten memory reads as zero.
        assert_eq!(
            run(&[stmt(LD | IMM, 5), stmt(LD | MEM, 3), ret_a()], &[], 0),
            0
        );
    }

    #[test]
    fn alu_with_constant_operand() {
        assert_eq!(alu_k(ADD, 5, 3), 8);
        assert_eq!(alu_k(ADD, u32::MAX, 2), 1, "wraps");
        assert_eq!(alu_k(SUB, 5, 3), 2);
        assert_eq!(alu_k(SUB, 3, 5), u32::MAX - 1, "wraps");
        assert_eq!(alu_k(MUL, 6, 7), 42);
        assert_eq!(alu_k(MUL, 0x8000_0000, 2), 0, "wraps");
        assert_eq!(alu_k(DIV, 43, 7), 6);
        assert_eq!(alu_k(MOD, 43, 7), 1);
        assert_eq!(alu_k(AND, 0xf0f0, 0xff00), 0xf000);
        assert_eq!(alu_k(OR, 0xf0f0, 0xff00), 0xfff0);
        assert_eq!(alu_k(XOR, 0xf0f0, 0xff00), 0x0ff0);
        assert_eq!(alu_k(LSH, 1, 4), 16);
        assert_eq!(alu_k(RSH, 0x100, 4), 0x10);
        assert_eq!(alu_k(LSH, 1, 32), 0);
        assert_eq!(alu_k(RSH, u32::MAX, 40), 0);
    }

    #[test]
    fn alu_with_x_operand() {
        assert_eq!(alu_x(ADD, 5, 3), 8);
        assert_eq!(alu_x(SUB, 5, 3), 2);
        assert_eq!(alu_x(MUL, 6, 7), 42);
        assert_eq!(alu_x(DIV, 43, 7), 6);
        assert_eq!(alu_x(MOD, 43, 7), 1);
        assert_eq!(alu_x(AND, 0xf0f0, 0xff00), 0xf000);
        assert_eq!(alu_x(OR, 0xf0f0, 0xff00), 0xfff0);
        assert_eq!(alu_x(XOR, 0xf0f0, 0xff00), 0x0ff0);
        assert_eq!(alu_x(LSH, 3, 2), 12);
        assert_eq!(alu_x(RSH, 12, 2), 3);
        assert_eq!(alu_x(LSH, 3, 33), 0);
    }

    #[test]
    fn division_and_modulo_by_zero_reject() {
        // A nonzero accumulator and a nonzero default return show the fault returns 0.
        for op in [DIV, MOD] {
            let k = [stmt(LD | IMM, 9), stmt(ALU | op | K, 0), stmt(RET | K, 1)];
            assert_eq!(run(&k, &[], 0), 0);
            let x = [
                stmt(LDX | IMM, 0),
                stmt(LD | IMM, 9),
                stmt(ALU | op | X, 0),
                stmt(RET | K, 1),
            ];
            assert_eq!(run(&x, &[], 0), 0);
        }
    }

    #[test]
    fn neg_tax_txa() {
        assert_eq!(
            run(&[stmt(LD | IMM, 1), stmt(ALU | NEG, 0), ret_a()], &[], 0),
            u32::MAX
        );
        assert_eq!(
            run(
                &[
                    stmt(LD | IMM, 7),
                    stmt(MISC | TAX, 0),
                    stmt(LD | IMM, 0),
                    stmt(MISC | TXA, 0),
                    ret_a()
                ],
                &[],
                0
            ),
            7
        );
    }

    /// `A = a; if A <cond> k then ret 1 else ret 2`.
    fn cond_k(op: u16, a: u32, k: u32) -> u32 {
        run(
            &[
                stmt(LD | IMM, a),
                jump(JMP | op | K, k, 0, 1),
                stmt(RET | K, 1),
                stmt(RET | K, 2),
            ],
            &[],
            0,
        )
    }
    /// The same comparing with X.
    fn cond_x(op: u16, a: u32, x: u32) -> u32 {
        run(
            &[
                stmt(LDX | IMM, x),
                stmt(LD | IMM, a),
                jump(JMP | op | X, 0, 0, 1),
                stmt(RET | K, 1),
                stmt(RET | K, 2),
            ],
            &[],
            0,
        )
    }

    #[test]
    fn conditional_jumps() {
        for f in [cond_k, cond_x] {
            assert_eq!(f(JEQ, 5, 5), 1);
            assert_eq!(f(JEQ, 5, 6), 2);
            assert_eq!(f(JGT, 6, 5), 1);
            assert_eq!(f(JGT, 5, 5), 2);
            assert_eq!(f(JGE, 5, 5), 1);
            assert_eq!(f(JGE, 4, 5), 2);
            assert_eq!(f(JSET, 0b1010, 0b0010), 1);
            assert_eq!(f(JSET, 0b1010, 0b0101), 2);
            // Comparisons are unsigned.
            assert_eq!(f(JGT, 0x8000_0000, 1), 1);
        }
    }

    #[test]
    fn unconditional_jump_skips() {
        let prog = [
            stmt(JMP | JA, 2),
            stmt(RET | K, 1),
            stmt(RET | K, 2),
            stmt(RET | K, 3),
        ];
        assert_eq!(run(&prog, &[], 0), 3);
    }

    #[test]
    fn validation_refuses_bad_programs() {
        assert_eq!(Program::new(&[]).unwrap_err(), ValidateError::Empty);
        assert_eq!(
            Program::new(&[stmt(LD | IMM, 1)]).unwrap_err(),
            ValidateError::NoFinalReturn
        );
        assert_eq!(
            Program::new(&[stmt(JMP | JA, 1), stmt(RET | K, 0)]).unwrap_err(),
            ValidateError::JumpOutOfRange { pc: 0 }
        );
        // Large offsets read as negative ones, landing before the start.
        assert_eq!(
            Program::new(&[
                stmt(RET | K, 0),
                stmt(JMP | JA, 0x8000_0000),
                stmt(RET | K, 0)
            ])
            .unwrap_err(),
            ValidateError::JumpOutOfRange { pc: 1 }
        );
        assert_eq!(
            Program::new(&[
                stmt(RET | K, 0),
                stmt(JMP | JA, 0x7fff_ffff),
                stmt(RET | K, 0)
            ])
            .unwrap_err(),
            ValidateError::JumpOutOfRange { pc: 1 }
        );
        assert_eq!(
            Program::new(&[
                jump(JMP | JEQ | K, 0, 0, 2),
                stmt(RET | K, 0),
                stmt(RET | K, 1)
            ])
            .unwrap_err(),
            ValidateError::JumpOutOfRange { pc: 0 }
        );
        assert_eq!(
            Program::new(&[stmt(ST, 16), stmt(RET | K, 0)]).unwrap_err(),
            ValidateError::MemoryIndex { pc: 0, k: 16 }
        );
        assert_eq!(
            Program::new(&[stmt(LDX | MEM, 99), stmt(RET | K, 0)]).unwrap_err(),
            ValidateError::MemoryIndex { pc: 0, k: 99 }
        );
        for code in [
            0x0100u16,
            LD | H | IMM,
            ALU | 0xb0,
            JMP | 0x50,
            RET | X,
            MISC | 0x40,
        ] {
            assert!(
                matches!(
                    Program::new(&[stmt(code, 0), stmt(RET | K, 0)]),
                    Err(ValidateError::UnknownOpcode { pc: 0, .. })
                ),
                "{code:#x}"
            );
        }
        let long = vec![stmt(RET | K, 0); MAX_INSNS + 1];
        assert_eq!(
            Program::new(&long).unwrap_err(),
            ValidateError::TooLong(MAX_INSNS + 1)
        );
    }

    #[test]
    fn tcpdump_style_program_ip_tcp_port() {
        // `tcp dst port 80` over Ethernet/IPv4 as libpcap compiles it (unoptimised shape).
        let prog = [
            stmt(LD | H | ABS, 12),
            jump(JMP | JEQ | K, 0x0800, 0, 8),
            stmt(LD | B | ABS, 23),
            jump(JMP | JEQ | K, 6, 0, 6),
            stmt(LD | H | ABS, 20),
            jump(JMP | JSET | K, 0x1fff, 4, 0),
            stmt(LDX | B | MSH, 14),
            stmt(LD | H | IND, 16),
            jump(JMP | JEQ | K, 80, 0, 1),
            stmt(RET | K, 262_144),
            stmt(RET | K, 0),
        ];
        let mut frame = [0u8; 54];
        frame[12] = 0x08;
        frame[14] = 0x45;
        frame[23] = 6;
        frame[36] = 0;
        frame[37] = 80;
        assert_eq!(run(&prog, &frame, 54), 262_144);
        frame[37] = 81;
        assert_eq!(run(&prog, &frame, 54), 0);
        frame[37] = 80;
        frame[20] = 0x00;
        frame[21] = 0x01; // a non-first fragment has no TCP header
        assert_eq!(run(&prog, &frame, 54), 0);
        // Captured bytes end before the port: reject.
        frame[21] = 0;
        assert_eq!(run(&prog, &frame[..37], 54), 0);
    }
}

#[cfg(test)]
mod backward_jump_tests {
    use super::code::*;
    use super::*;

    #[test]
    fn signed_unconditional_jump_loops_and_terminates() {
        // X = 0; loop: A = P[X]; if A == 0 ret 1; X += 1; goto loop — finds the first zero byte,
        // the shape of libpcap's `ip6 protochain` loop.
        let back = (-7i32) as u32; // from 7 back to 1
        let prog = [
            Insn::new(LDX | IMM, 0, 0, 0),
            Insn::new(LD | B | IND, 0, 0, 0),
            Insn::new(JMP | JEQ | K, 0, 1, 0),
            Insn::new(RET | K, 0, 0, 1),
            Insn::new(MISC | TXA, 0, 0, 0),
            Insn::new(ALU | ADD | K, 0, 0, 1),
            Insn::new(MISC | TAX, 0, 0, 0),
            Insn::new(JMP | JA, 0, 0, back),
            Insn::new(RET | K, 0, 0, 0),
        ];
        let p = Program::new(&prog).expect("valid");
        assert_eq!(p.run(&[5, 6, 0, 1], 4), 1);
        assert_eq!(p.run(&[5, 6, 7, 1], 4), 0, "runs off the end: rejected");
    }

    #[test]
    fn endless_loop_is_cut_off() {
        // loop: goto loop (a jump of -1 onto itself).
        let prog = [
            Insn::new(LD | IMM, 0, 0, 1),
            Insn::new(JMP | JA, 0, 0, (-1i32) as u32),
            Insn::new(RET | A, 0, 0, 0),
        ];
        let p = Program::new(&prog).expect("valid");
        assert_eq!(p.run(&[0; 100], 100), 0);
        assert_eq!(p.run(&[], 0), 0);
    }

    #[test]
    fn backward_jump_before_the_start_is_refused() {
        let prog = [
            Insn::new(JMP | JA, 0, 0, (-2i32) as u32),
            Insn::new(RET | K, 0, 0, 0),
        ];
        assert_eq!(
            Program::new(&prog).unwrap_err(),
            ValidateError::JumpOutOfRange { pc: 0 }
        );
    }
}
