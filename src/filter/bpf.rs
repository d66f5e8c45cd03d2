//! A classic BPF interpreter (the instruction set libpcap compiles tcpdump expressions to).
//!
//! Safe by construction: a program is validated once when loaded (forward jumps in range,
//! scratch memory indices below 16, a return at the end), so running it needs only packet
//! bounds checks. Loads beyond the captured bytes and division by zero reject the packet, as
//! libpcap's own `bpf_filter` does.

/// One instruction, as `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Instruction classes and fields (pcap/bpf.h).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;

const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;

const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const MSH: u16 = 0xa0;

const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const MOD: u16 = 0x90;
const XOR: u16 = 0xa0;

const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;

#[allow(dead_code)] // BPF_K is 0: the absence of BPF_X; named for the tests and the reader
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;

const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

const MEMWORDS: u32 = 16;

/// A validated program.
#[derive(Clone, Debug)]
pub struct Program {
    insns: Vec<Insn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProgram(pub String);

impl Program {
    pub fn new(insns: Vec<Insn>) -> Result<Program, InvalidProgram> {
        let bad = |i: usize, why: &str| Err(InvalidProgram(format!("instruction {i}: {why}")));
        if insns.is_empty() {
            return Err(InvalidProgram("empty program".into()));
        }
        let n = insns.len();
        for (i, ins) in insns.iter().enumerate() {
            let class = ins.code & 0x07;
            match class {
                LD | LDX => {
                    let mode = ins.code & 0xe0;
                    let ok = match (class, mode) {
                        (LD, IMM | ABS | IND | LEN) | (LDX, IMM | LEN | MSH) => true,
                        (_, MEM) => ins.k < MEMWORDS,
                        _ => false,
                    };
                    if !ok {
                        return bad(i, "unknown load");
                    }
                    if class == LD
                        && matches!(mode, ABS | IND)
                        && !matches!(ins.code & 0x18, W | H | B)
                    {
                        return bad(i, "unknown load size");
                    }
                }
                ST | STX if ins.k >= MEMWORDS => {
                    return bad(i, "scratch memory index out of range")
                }
                ST | STX => {}
                ALU => {
                    let op = ins.code & 0xf0;
                    if !matches!(
                        op,
                        ADD | SUB | MUL | DIV | OR | AND | LSH | RSH | NEG | MOD | XOR
                    ) {
                        return bad(i, "unknown ALU operation");
                    }
                }
                JMP => {
                    let op = ins.code & 0xf0;
                    let targets = if op == JA {
                        vec![i as u64 + 1 + u64::from(ins.k)]
                    } else if matches!(op, JEQ | JGT | JGE | JSET) {
                        vec![
                            i as u64 + 1 + u64::from(ins.jt),
                            i as u64 + 1 + u64::from(ins.jf),
                        ]
                    } else {
                        return bad(i, "unknown jump");
                    };
                    if targets.iter().any(|&t| t >= n as u64) {
                        return bad(i, "jump out of the program");
                    }
                }
                RET => {}
                MISC if matches!(ins.code & 0xf8, TAX | TXA) => {}
                _ => return bad(i, "unknown instruction"),
            }
        }
        if insns[n - 1].code & 0x07 != RET {
            return bad(n - 1, "the program does not end in a return");
        }
        Ok(Program { insns })
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Run over a packet of `wire_len` octets of which `data` were captured. Non-zero means
    /// accept (libpcap returns the snapshot length to keep).
    pub fn run(&self, data: &[u8], wire_len: u32) -> u32 {
        let (mut a, mut x) = (0u32, 0u32);
        let mut mem = [0u32; MEMWORDS as usize];
        let mut pc = 0usize;
        let load = |at: u32, size: u16| -> Option<u32> {
            let at = at as usize;
            match size {
                W => data
                    .get(at..at.checked_add(4)?)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                H => data
                    .get(at..at.checked_add(2)?)
                    .map(|b| u32::from(u16::from_be_bytes([b[0], b[1]]))),
                _ => data.get(at).map(|&b| u32::from(b)),
            }
        };
        // Validation guarantees every jump goes forward and stays inside, and that the last
        // instruction returns, so this loop ends within `len` steps.
        while let Some(ins) = self.insns.get(pc) {
            pc += 1;
            let k = ins.k;
            match ins.code & 0x07 {
                LD => {
                    a = match ins.code & 0xe0 {
                        IMM => k,
                        LEN => wire_len,
                        MEM => mem[k as usize],
                        ABS => match load(k, ins.code & 0x18) {
                            Some(v) => v,
                            None => return 0,
                        },
                        _ => match x.checked_add(k).and_then(|at| load(at, ins.code & 0x18)) {
                            Some(v) => v,
                            None => return 0,
                        },
                    }
                }
                LDX => {
                    x = match ins.code & 0xe0 {
                        IMM => k,
                        LEN => wire_len,
                        MEM => mem[k as usize],
                        _ => match load(k, B) {
                            Some(v) => (v & 0x0f) << 2,
                            None => return 0,
                        },
                    }
                }
                ST => mem[k as usize] = a,
                STX => mem[k as usize] = x,
                ALU => {
                    let v = if ins.code & X != 0 { x } else { k };
                    a = match ins.code & 0xf0 {
                        ADD => a.wrapping_add(v),
                        SUB => a.wrapping_sub(v),
                        MUL => a.wrapping_mul(v),
                        DIV if v == 0 => return 0,
                        DIV => a / v,
                        MOD if v == 0 => return 0,
                        MOD => a % v,
                        OR => a | v,
                        AND => a & v,
                        XOR => a ^ v,
                        LSH => a.checked_shl(v).unwrap_or(0),
                        RSH => a.checked_shr(v).unwrap_or(0),
                        _ => a.wrapping_neg(),
                    }
                }
                JMP => {
                    let v = if ins.code & X != 0 { x } else { k };
                    let op = ins.code & 0xf0;
                    if op == JA {
                        pc += k as usize;
                        continue;
                    }
                    let taken = match op {
                        JEQ => a == v,
                        JGT => a > v,
                        JGE => a >= v,
                        _ => a & v != 0,
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
                RET => {
                    return match ins.code & 0x18 {
                        A => a,
                        _ => k,
                    }
                }
                _ => {
                    if ins.code & 0xf8 == TXA {
                        a = x;
                    } else {
                        x = a;
                    }
                }
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    fn run(p: Vec<Insn>, data: &[u8]) -> u32 {
        Program::new(p).unwrap().run(data, data.len() as u32 + 10)
    }

    #[test]
    fn loads_of_every_size_and_mode() {
        let pkt = [0x12, 0x34, 0x56, 0x78, 0x45];
        assert_eq!(
            run(
                vec![ins(LD | W | ABS, 0, 0, 0), ins(RET | A, 0, 0, 0)],
                &pkt
            ),
            0x1234_5678
        );
        assert_eq!(
            run(
                vec![ins(LD | H | ABS, 0, 0, 1), ins(RET | A, 0, 0, 0)],
                &pkt
            ),
            0x3456
        );
        assert_eq!(
            run(
                vec![ins(LD | B | ABS, 0, 0, 4), ins(RET | A, 0, 0, 0)],
                &pkt
            ),
            0x45
        );
        assert_eq!(
            run(vec![ins(LD | LEN, 0, 0, 0), ins(RET | A, 0, 0, 0)], &pkt),
            15,
            "len is the wire length"
        );
        // MSH: X = 4 * (low nibble of byte k), the IPv4 header length idiom.
        assert_eq!(
            run(
                vec![
                    ins(LDX | B | MSH, 0, 0, 4),
                    ins(MISC | TXA, 0, 0, 0),
                    ins(RET | A, 0, 0, 0)
                ],
                &pkt
            ),
            20
        );
        assert_eq!(
            run(
                vec![
                    ins(LDX | IMM, 0, 0, 2),
                    ins(LD | B | IND, 0, 0, 1),
                    ins(RET | A, 0, 0, 0)
                ],
                &pkt
            ),
            0x78
        );
        assert_eq!(
            run(
                vec![
                    ins(LD | IMM, 0, 0, 7),
                    ins(ST, 0, 0, 3),
                    ins(LDX | MEM, 0, 0, 3),
                    ins(STX, 0, 0, 4),
                    ins(LD | MEM, 0, 0, 4),
                    ins(RET | A, 0, 0, 0)
                ],
                &pkt
            ),
            7
        );
    }

    #[test]
    fn out_of_bounds_loads_and_division_by_zero_reject() {
        let pkt = [1, 2, 3];
        assert_eq!(
            run(
                vec![ins(LD | W | ABS, 0, 0, 0), ins(RET | K, 0, 0, 1)],
                &pkt
            ),
            0
        );
        assert_eq!(
            run(
                vec![ins(LD | B | ABS, 0, 0, u32::MAX), ins(RET | K, 0, 0, 1)],
                &pkt
            ),
            0
        );
        assert_eq!(
            run(
                vec![
                    ins(LDX | IMM, 0, 0, u32::MAX),
                    ins(LD | B | IND, 0, 0, 2),
                    ins(RET | K, 0, 0, 1)
                ],
                &pkt
            ),
            0
        );
        assert_eq!(
            run(
                vec![
                    ins(LD | IMM, 0, 0, 9),
                    ins(ALU | DIV | K, 0, 0, 0),
                    ins(RET | K, 0, 0, 1)
                ],
                &pkt
            ),
            0
        );
        assert_eq!(
            run(
                vec![
                    ins(LD | IMM, 0, 0, 9),
                    ins(ALU | MOD | X, 0, 0, 0),
                    ins(RET | K, 0, 0, 1)
                ],
                &pkt
            ),
            0
        );
    }

    #[test]
    fn alu_operations() {
        let op = |code: u16, a: u32, k: u32| {
            run(
                vec![
                    ins(LD | IMM, 0, 0, a),
                    ins(ALU | code | K, 0, 0, k),
                    ins(RET | A, 0, 0, 0),
                ],
                &[],
            )
        };
        assert_eq!(op(ADD, 5, 3), 8);
        assert_eq!(op(SUB, 5, 7), 5u32.wrapping_sub(7));
        assert_eq!(op(MUL, 5, 3), 15);
        assert_eq!(op(DIV, 17, 5), 3);
        assert_eq!(op(MOD, 17, 5), 2);
        assert_eq!(op(AND, 0b1100, 0b1010), 0b1000);
        assert_eq!(op(OR, 0b1100, 0b1010), 0b1110);
        assert_eq!(op(XOR, 0b1100, 0b1010), 0b0110);
        assert_eq!(op(LSH, 1, 4), 16);
        assert_eq!(op(RSH, 16, 4), 1);
        assert_eq!(op(LSH, 1, 40), 0);
        assert_eq!(op(NEG, 1, 0), u32::MAX);
    }

    #[test]
    fn jumps() {
        // if A == 5 return 1 else return 2
        let prog = |a: u32, cmp: u16| {
            run(
                vec![
                    ins(LD | IMM, 0, 0, a),
                    ins(JMP | cmp | K, 0, 1, 5),
                    ins(RET | K, 0, 0, 1),
                    ins(RET | K, 0, 0, 2),
                ],
                &[],
            )
        };
        assert_eq!(prog(5, JEQ), 1);
        assert_eq!(prog(4, JEQ), 2);
        assert_eq!(prog(6, JGT), 1);
        assert_eq!(prog(5, JGT), 2);
        assert_eq!(prog(5, JGE), 1);
        assert_eq!(prog(4, JSET), 1);
        assert_eq!(prog(2, JSET), 2);
        assert_eq!(
            run(
                vec![
                    ins(JMP | JA, 0, 0, 1),
                    ins(RET | K, 0, 0, 1),
                    ins(RET | K, 0, 0, 2)
                ],
                &[]
            ),
            2
        );
    }

    #[test]
    fn invalid_programs_are_refused() {
        assert!(Program::new(vec![]).is_err());
        assert!(
            Program::new(vec![ins(LD | IMM, 0, 0, 0)]).is_err(),
            "no return"
        );
        assert!(Program::new(vec![ins(JMP | JA, 0, 0, 5), ins(RET | K, 0, 0, 0)]).is_err());
        assert!(Program::new(vec![ins(JMP | JEQ, 9, 0, 5), ins(RET | K, 0, 0, 0)]).is_err());
        assert!(Program::new(vec![ins(ST, 0, 0, 16), ins(RET | K, 0, 0, 0)]).is_err());
        assert!(Program::new(vec![ins(LD | MEM, 0, 0, 99), ins(RET | K, 0, 0, 0)]).is_err());
        assert!(Program::new(vec![ins(0xff, 0, 0, 0), ins(RET | K, 0, 0, 0)]).is_err());
    }
}
