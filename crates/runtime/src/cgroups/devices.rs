//! Device access rules: which device nodes a container may create (`m`),
//! read (`r`) and write (`w`).
//!
//! Everything is denied unless a rule allows it (runc's device emulator
//! starts from the same empty allow-list). The rules are the configuration's
//! `linux.resources.devices`, followed by an allow rule for every node of
//! `linux.devices`, followed by the devices every container needs
//! (`/dev/null`, `/dev/zero`, ptys, ...), as runc does. Later rules win. On cgroup v1 they are written to `devices.deny` and
//! `devices.allow`; on v2 they become an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` (see [`compile_bpf_program`]).

use hafen_oci::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

/// Read access.
pub const ACCESS_READ: u8 = 1;
/// Write access.
pub const ACCESS_WRITE: u8 = 2;
/// mknod.
pub const ACCESS_MKNOD: u8 = 4;
const ACCESS_ALL: u8 = ACCESS_READ | ACCESS_WRITE | ACCESS_MKNOD;

/// The kind of device a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// Every kind.
    All,
    /// Character devices.
    Char,
    /// Block devices.
    Block,
}

/// One device access rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Allow (`true`) or deny.
    pub allow: bool,
    /// Which kind of device.
    pub kind: DeviceKind,
    /// The major number; `None` matches any.
    pub major: Option<i64>,
    /// The minor number; `None` matches any.
    pub minor: Option<i64>,
    /// `ACCESS_*` bits.
    pub access: u8,
}

impl DeviceRule {
    const fn allow(kind: DeviceKind, major: Option<i64>, minor: Option<i64>, access: u8) -> Self {
        DeviceRule {
            allow: true,
            kind,
            major,
            minor,
            access,
        }
    }

    /// The line cgroup v1's `devices.allow`/`devices.deny` expects: `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let num = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// What every container may use, as runc allows it: mknod of any device (the
/// capability decides), the null/zero/full/random/urandom/tty nodes, ptys and
/// `/dev/net/tun`.
const DEFAULT_RULES: &[DeviceRule] = &[
    DeviceRule::allow(DeviceKind::Char, None, None, ACCESS_MKNOD),
    DeviceRule::allow(DeviceKind::Block, None, None, ACCESS_MKNOD),
    DeviceRule::allow(DeviceKind::Char, Some(1), Some(3), ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(1), Some(8), ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(1), Some(7), ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(5), Some(0), ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(1), Some(5), ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(1), Some(9), ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(136), None, ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(5), Some(2), ACCESS_ALL),
    DeviceRule::allow(DeviceKind::Char, Some(10), Some(200), ACCESS_ALL),
];

fn parse_access(access: Option<&str>) -> u8 {
    let Some(access) = access.filter(|a| !a.is_empty()) else {
        return ACCESS_ALL;
    };
    access.chars().fold(0, |bits, c| match c {
        'r' => bits | ACCESS_READ,
        'w' => bits | ACCESS_WRITE,
        'm' => bits | ACCESS_MKNOD,
        _ => bits,
    })
}

fn kind_of(typ: Option<LinuxDeviceType>) -> Option<DeviceKind> {
    match typ {
        None | Some(LinuxDeviceType::A) => Some(DeviceKind::All),
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => Some(DeviceKind::Char),
        Some(LinuxDeviceType::B) => Some(DeviceKind::Block),
        Some(LinuxDeviceType::P) => None,
    }
}

/// The full rule list for a container (see the module documentation).
pub fn effective_rules(
    configured: &[LinuxDeviceCgroup],
    devices: &[LinuxDevice],
) -> Vec<DeviceRule> {
    let mut rules: Vec<DeviceRule> = configured
        .iter()
        .filter_map(|r| {
            Some(DeviceRule {
                allow: r.allow(),
                kind: kind_of(r.typ())?,
                major: r.major().filter(|&m| m >= 0),
                minor: r.minor().filter(|&m| m >= 0),
                access: parse_access(r.access().as_deref()),
            })
        })
        .collect();
    for device in devices {
        let Some(kind) = kind_of(Some(device.typ())).filter(|k| *k != DeviceKind::All) else {
            continue;
        };
        rules.push(DeviceRule::allow(
            kind,
            Some(device.major()),
            Some(device.minor()),
            ACCESS_ALL,
        ));
    }
    rules.extend_from_slice(DEFAULT_RULES);
    rules
}

// eBPF encoding (include/uapi/linux/bpf.h, bpf_common.h).
const BPF_LDX_MEM_W: u8 = 0x61;
const BPF_ALU32_AND_K: u8 = 0x54;
const BPF_ALU32_RSH_K: u8 = 0x74;
const BPF_ALU32_MOV_X: u8 = 0xbc;
const BPF_ALU64_MOV_K: u8 = 0xb7;
const BPF_JMP_JNE_K: u8 = 0x55;
const BPF_JMP_JEQ_K: u8 = 0x15;
const BPF_EXIT: u8 = 0x95;
/// `bpf_cgroup_dev_ctx.access_type` low half: `BPF_DEVCG_DEV_BLOCK`/`_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// High half: `BPF_DEVCG_ACC_MKNOD`, `_READ`, `_WRITE`.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// One eBPF instruction (`struct bpf_insn`), 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BpfInsn {
    /// Opcode.
    pub code: u8,
    /// dst register (low nibble) and src register (high nibble).
    pub regs: u8,
    /// Offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

fn bpf_access(access: u8) -> i32 {
    let mut bits = 0;
    if access & ACCESS_READ != 0 {
        bits |= ACC_READ;
    }
    if access & ACCESS_WRITE != 0 {
        bits |= ACC_WRITE;
    }
    if access & ACCESS_MKNOD != 0 {
        bits |= ACC_MKNOD;
    }
    bits
}

/// Compiles rules to a `BPF_PROG_TYPE_CGROUP_DEVICE` program that returns 1
/// (allow) or 0 (deny). Rules are checked from the last to the first; the
/// first that matches decides, and a request no rule matches is denied. An
/// allow rule matches when it grants every access asked for, a deny rule when
/// it covers any of them.
pub fn compile_bpf_program(rules: &[DeviceRule]) -> Vec<BpfInsn> {
    // r2 = type, r3 = access, r4 = major, r5 = minor (r1 is the context).
    let mut prog = vec![
        insn(BPF_LDX_MEM_W, 2, 1, 0, 0),
        insn(BPF_ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(BPF_LDX_MEM_W, 3, 1, 0, 0),
        insn(BPF_ALU32_RSH_K, 3, 0, 0, 16),
        insn(BPF_LDX_MEM_W, 4, 1, 4, 0),
        insn(BPF_LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        // Each check jumps to the end of the block (the next rule) on mismatch;
        // offsets are filled in once the block's length is known.
        let mut block: Vec<(BpfInsn, bool)> = Vec::new();
        match rule.kind {
            DeviceKind::All => {}
            DeviceKind::Char => block.push((insn(BPF_JMP_JNE_K, 2, 0, 0, DEV_CHAR), true)),
            DeviceKind::Block => block.push((insn(BPF_JMP_JNE_K, 2, 0, 0, DEV_BLOCK), true)),
        }
        let access = bpf_access(rule.access);
        if rule.allow && rule.access != ACCESS_ALL {
            // Anything asked for beyond the rule's access: no match.
            block.push((insn(BPF_ALU32_MOV_X, 1, 3, 0, 0), false));
            block.push((insn(BPF_ALU32_AND_K, 1, 0, 0, !access & 0x7), false));
            block.push((insn(BPF_JMP_JNE_K, 1, 0, 0, 0), true));
        } else if !rule.allow && rule.access != ACCESS_ALL {
            // Nothing asked for that the rule covers: no match.
            block.push((insn(BPF_ALU32_MOV_X, 1, 3, 0, 0), false));
            block.push((insn(BPF_ALU32_AND_K, 1, 0, 0, access), false));
            block.push((insn(BPF_JMP_JEQ_K, 1, 0, 0, 0), true));
        }
        if let Some(major) = rule.major {
            block.push((insn(BPF_JMP_JNE_K, 4, 0, 0, major as i32), true));
        }
        if let Some(minor) = rule.minor {
            block.push((insn(BPF_JMP_JNE_K, 5, 0, 0, minor as i32), true));
        }
        block.push((insn(BPF_ALU64_MOV_K, 0, 0, 0, i32::from(rule.allow)), false));
        block.push((insn(BPF_EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        let matches_everything = !block.iter().any(|(_, jumps)| *jumps);
        for (i, (mut ins, jumps)) in block.into_iter().enumerate() {
            if jumps {
                ins.off = (len - i - 1) as i16;
            }
            prog.push(ins);
        }
        if matches_everything {
            // Earlier rules can never decide: the verifier refuses
            // unreachable instructions, so stop here.
            return prog;
        }
    }
    prog.push(insn(BPF_ALU64_MOV_K, 0, 0, 0, 0));
    prog.push(insn(BPF_EXIT, 0, 0, 0, 0));
    prog
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions `compile_bpf_program` emits, so
    /// that the program's decisions can be checked without a cgroup v2 host.
    fn run(prog: &[BpfInsn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                BPF_LDX_MEM_W => r[dst] = u64::from(ctx[i.off as usize / 4]),
                BPF_ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & (i.imm as u32)),
                BPF_ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                BPF_ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                BPF_ALU64_MOV_K => r[dst] = i64::from(i.imm) as u64,
                BPF_JMP_JNE_K => {
                    if r[dst] != i64::from(i.imm) as u64 {
                        pc += i.off as usize;
                    }
                }
                BPF_JMP_JEQ_K => {
                    if r[dst] == i64::from(i.imm) as u64 {
                        pc += i.off as usize;
                    }
                }
                BPF_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    fn deny_all() -> LinuxDeviceCgroup {
        serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap()
    }

    #[test]
    fn default_config_allows_only_the_standard_devices() {
        let rules = effective_rules(&[deny_all()], &[]);
        let prog = compile_bpf_program(&rules);
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 3), 1, "/dev/null");
        assert_eq!(run(&prog, DEV_CHAR, rw, 136, 7), 1, "a pty");
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 1), 0, "/dev/mem");
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 0), 0, "a disk");
        assert_eq!(
            run(&prog, DEV_BLOCK, ACC_MKNOD, 8, 0),
            1,
            "mknod is left to the capability"
        );
    }

    #[test]
    fn later_rules_win_and_partial_access_is_respected() {
        let configured: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"b","major":8,"minor":0,"access":"r"},
                {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
        )
        .unwrap();
        let prog = compile_bpf_program(&effective_rules(&configured, &[]));
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 0), 1);
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ | ACC_WRITE, 8, 0), 0);
        // The default rules come after the configured ones, so /dev/null stays
        // writable, as with runc.
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 1, 3), 1);
        // Without the defaults the deny rule decides.
        let prog = compile_bpf_program(&effective_rules(&configured, &[])[..3]);
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 1, 3), 0);
        assert_eq!(
            run(&prog, DEV_CHAR, ACC_READ, 1, 3),
            0,
            "denied by the first rule"
        );
    }

    #[test]
    fn without_rules_everything_is_denied() {
        let prog = compile_bpf_program(&[]);
        assert_eq!(run(&prog, DEV_BLOCK, ACC_WRITE, 8, 0), 0);
        // An empty configuration still gets the standard devices.
        let prog = compile_bpf_program(&effective_rules(&[], &[]));
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 7, 0), 0, "a loop device");
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 1, 11), 0, "/dev/kmsg");
        assert_eq!(run(&prog, DEV_CHAR, ACC_WRITE, 1, 3), 1, "/dev/null");
        // A privileged configuration allows everything.
        let all: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow":true,"access":"rwm"}]"#).unwrap();
        let prog = compile_bpf_program(&effective_rules(&all, &[]));
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 7, 0), 1);
    }

    #[test]
    fn v1_lines() {
        let rules = effective_rules(&[deny_all()], &[]);
        assert_eq!(rules[0].v1_line(), "a *:* rwm");
        assert_eq!(rules[1].v1_line(), "c *:* m");
        assert_eq!(rules[3].v1_line(), "c 1:3 rwm");
        assert_eq!(rules[9].v1_line(), "c 136:* rwm");
    }

    #[test]
    fn listed_devices_are_allowed() {
        let device: LinuxDevice =
            serde_json::from_str(r#"{"path":"/dev/fuse","type":"c","major":10,"minor":229}"#)
                .unwrap();
        let rules = effective_rules(&[deny_all()], &[device]);
        let prog = compile_bpf_program(&rules);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ | ACC_WRITE, 10, 229), 1);
    }
}
