//! A small classic-BPF assembler: instructions with symbolic labels, laid out
//! so that every conditional jump fits BPF's 8-bit offsets (far targets go
//! through an unconditional `ja` trampoline, whose offset is 32 bits).

/// `struct sock_filter` as the kernel reads it.
pub type SockFilter = libc::sock_filter;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x54;
const BPF_JMP_JA: u16 = 0x05;
const BPF_RET_K: u16 = 0x06;

/// Conditional jump kinds (all compare the accumulator with a constant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `A == k`
    Eq,
    /// `A > k` (unsigned)
    Gt,
    /// `A >= k` (unsigned)
    Ge,
}

impl Cond {
    fn opcode(self) -> u16 {
        match self {
            Cond::Eq => 0x15,
            Cond::Gt => 0x25,
            Cond::Ge => 0x35,
        }
    }
}

/// A jump target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label(usize);

/// One instruction before layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ins {
    Load(u32),
    And(u32),
    Jump {
        cond: Cond,
        k: u32,
        yes: Label,
        no: Label,
    },
    Goto(Label),
    Ret(u32),
    Here(Label),
}

/// A program under construction.
#[derive(Debug, Default)]
pub struct Assembler {
    code: Vec<Ins>,
    labels: usize,
}

/// The assembled program is longer than the kernel accepts.
#[derive(Debug, thiserror::Error)]
#[error("the seccomp filter needs {0} instructions; the kernel accepts at most 4096")]
pub struct TooLong(pub usize);

impl Assembler {
    /// A fresh label.
    pub fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `label` at the current position.
    pub fn here(&mut self, label: Label) {
        self.code.push(Ins::Here(label));
    }

    /// `A = *(u32 *)(data + offset)`.
    pub fn load(&mut self, offset: u32) {
        self.code.push(Ins::Load(offset));
    }

    /// `A &= k`.
    pub fn and(&mut self, k: u32) {
        self.code.push(Ins::And(k));
    }

    /// `if (A <cond> k) goto yes; else goto no;`
    pub fn jump(&mut self, cond: Cond, k: u32, yes: Label, no: Label) {
        self.code.push(Ins::Jump { cond, k, yes, no });
    }

    /// `goto target`.
    pub fn goto(&mut self, target: Label) {
        self.code.push(Ins::Goto(target));
    }

    /// `return k`.
    pub fn ret(&mut self, k: u32) {
        self.code.push(Ins::Ret(k));
    }

    /// Lays the program out and encodes it. All jumps must go forward.
    pub fn finish(mut self) -> Result<Vec<SockFilter>, TooLong> {
        loop {
            let positions = self.positions();
            let mut fix = None;
            for (i, ins) in self.code.iter().enumerate() {
                if let Ins::Jump { yes, no, .. } = *ins {
                    let at = positions.index[i];
                    let far = |l: Label| positions.label[l.0].saturating_sub(at + 1) > 255;
                    if far(yes) {
                        fix = Some((i, yes, true));
                        break;
                    }
                    if far(no) {
                        fix = Some((i, no, false));
                        break;
                    }
                }
            }
            let Some((i, target, is_yes)) = fix else {
                break;
            };
            // Route the far branch through a trampoline right after the jump.
            let trampoline = self.label();
            if let Ins::Jump { yes, no, .. } = &mut self.code[i] {
                if is_yes {
                    *yes = trampoline;
                } else {
                    *no = trampoline;
                }
            }
            // A conditional jump never falls through, so the trampoline can
            // sit right behind it.
            self.code
                .splice(i + 1..i + 1, [Ins::Here(trampoline), Ins::Goto(target)]);
        }
        let positions = self.positions();
        let mut out = Vec::with_capacity(positions.len);
        for (i, ins) in self.code.iter().enumerate() {
            let at = positions.index[i];
            let rel = |l: Label| positions.label[l.0] - (at + 1);
            let filter = |code, jt, jf, k| SockFilter { code, jt, jf, k };
            match *ins {
                Ins::Load(off) => out.push(filter(BPF_LD_W_ABS, 0, 0, off)),
                Ins::And(k) => out.push(filter(BPF_ALU_AND_K, 0, 0, k)),
                Ins::Jump { cond, k, yes, no } => {
                    out.push(filter(cond.opcode(), rel(yes) as u8, rel(no) as u8, k));
                }
                Ins::Goto(l) => out.push(filter(BPF_JMP_JA, 0, 0, rel(l) as u32)),
                Ins::Ret(k) => out.push(filter(BPF_RET_K, 0, 0, k)),
                Ins::Here(_) => {}
            }
        }
        if out.len() > 4096 {
            return Err(TooLong(out.len()));
        }
        Ok(out)
    }

    fn positions(&self) -> Positions {
        let mut index = Vec::with_capacity(self.code.len());
        let mut label = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for ins in &self.code {
            index.push(pc);
            match ins {
                Ins::Here(l) => label[l.0] = pc,
                _ => pc += 1,
            }
        }
        Positions {
            index,
            label,
            len: pc,
        }
    }
}

struct Positions {
    index: Vec<usize>,
    label: Vec<usize>,
    len: usize,
}

/// Runs a classic-BPF seccomp program over `seccomp_data` (for tests and for
/// checking a compiled filter without loading it).
pub fn interpret(prog: &[SockFilter], data: &[u8]) -> u32 {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    while pc < prog.len() {
        let ins = prog[pc];
        pc += 1;
        match ins.code {
            BPF_LD_W_ABS => {
                let o = ins.k as usize;
                a = u32::from_ne_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
            }
            BPF_ALU_AND_K => a &= ins.k,
            BPF_JMP_JA => pc += ins.k as usize,
            BPF_RET_K => return ins.k,
            code => {
                let taken = match code {
                    0x15 => a == ins.k,
                    0x25 => a > ins.k,
                    0x35 => a >= ins.k,
                    _ => return 0,
                };
                pc += usize::from(if taken { ins.jt } else { ins.jf });
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(nr: u32) -> Vec<u8> {
        let mut d = vec![0u8; 64];
        d[..4].copy_from_slice(&nr.to_ne_bytes());
        d
    }

    #[test]
    fn far_jumps_get_trampolines() {
        let mut asm = Assembler::default();
        let far = asm.label();
        let near = asm.label();
        asm.load(0);
        asm.jump(Cond::Eq, 7, far, near);
        asm.here(near);
        for _ in 0..600 {
            asm.ret(1);
        }
        asm.here(far);
        asm.ret(2);
        let prog = asm.finish().unwrap();
        assert_eq!(interpret(&prog, &data(7)), 2);
        assert_eq!(interpret(&prog, &data(8)), 1);
        assert!(prog.iter().all(|i| i.code != 0x15 || (i.jt as usize) < 256));
    }

    #[test]
    fn comparisons() {
        for (cond, k, nr, want) in [
            (Cond::Eq, 5, 5, true),
            (Cond::Eq, 5, 6, false),
            (Cond::Gt, 5, 6, true),
            (Cond::Gt, 5, 5, false),
            (Cond::Ge, 5, 5, true),
            (Cond::Ge, 5, 4, false),
        ] {
            let mut asm = Assembler::default();
            let (y, n) = (asm.label(), asm.label());
            asm.load(0);
            asm.jump(cond, k, y, n);
            asm.here(y);
            asm.ret(1);
            asm.here(n);
            asm.ret(0);
            let prog = asm.finish().unwrap();
            assert_eq!(interpret(&prog, &data(nr)) == 1, want, "{cond:?} {k} {nr}");
        }
    }
}
