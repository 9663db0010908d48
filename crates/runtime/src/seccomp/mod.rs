//! `linux.seccomp`: the configuration's syscall filter, compiled to classic BPF
//! by hafen itself (no libseccomp) and loaded with `seccomp(2)`.
//!
//! Semantics follow libseccomp as runc uses it:
//! - the filter first checks the architecture; architectures the profile does
//!   not list get `SECCOMP_RET_KILL_THREAD` (libseccomp's bad-arch action);
//! - per syscall, rules are tried in the profile's order, rules with argument
//!   conditions before unconditional ones; no match → the default action;
//! - the conditions of one rule are ANDed; when one syscall entry lists the
//!   same argument index twice, each condition becomes its own rule (ORed),
//!   as runc does for libseccomp;
//! - 64-bit argument comparisons compare both halves;
//! - when the default action refuses (errno, kill, trap), syscalls numbered
//!   above every syscall the profile names return `ENOSYS`, so that programs
//!   probing newer syscalls (e.g. `clone3`) fall back instead of failing, as
//!   runc's filter patch does;
//! - syscall names unknown for an architecture are skipped.
//!
//! Dispatch on the syscall number is a binary search, so a profile with
//! hundreds of syscalls costs a handful of comparisons per syscall.

pub mod bpf;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::str::FromStr;

use hafen_oci::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use bpf::{Assembler, Cond, Label, SockFilter};

/// Errors in a seccomp configuration.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The compiled program is too long.
    #[error(transparent)]
    TooLong(#[from] bpf::TooLong),
    /// An argument index is out of range.
    #[error("linux.seccomp: syscall {name} compares argument {index}; there are only six (0-5)")]
    ArgIndex {
        /// The syscall.
        name: String,
        /// The index.
        index: usize,
    },
    /// SCMP_ACT_NOTIFY without a listener.
    #[error("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")]
    NotifyWithoutListener,
    /// SCMP_ACT_NOTIFY as the default action.
    #[error("linux.seccomp: SCMP_ACT_NOTIFY cannot be the default action")]
    NotifyDefault,
    /// The kernel refused the filter.
    #[error("cannot load the seccomp filter: {0}")]
    Load(std::io::Error),
}

// seccomp return values (include/uapi/linux/seccomp.h).
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_KILL_THREAD: u32 = 0x0000_0000;
const RET_TRAP: u32 = 0x0003_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_USER_NOTIF: u32 = 0x7fc0_0000;
const RET_TRACE: u32 = 0x7ff0_0000;
const RET_LOG: u32 = 0x7ffc_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

// Architectures (include/uapi/linux/audit.h).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// seccomp_data layout.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;

/// A filter ready to load.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    /// The BPF program.
    pub program: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` bits.
    pub flags: u32,
    /// Where to send the notification fd (when the profile uses SCMP_ACT_NOTIFY).
    pub listener_path: Option<PathBuf>,
    /// Opaque metadata for the listener.
    pub listener_metadata: Option<String>,
}

impl CompiledFilter {
    /// Loads the filter into the calling thread; returns the notification fd
    /// when the profile uses SCMP_ACT_NOTIFY.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        crate::sys::seccomp_set_filter(&self.program, self.flags).map_err(SeccompError::Load)
    }
}

/// The ABIs hafen can filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Abi {
    X86_64,
    X32,
    X86,
    Aarch64,
    Arm,
}

impl Abi {
    fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
        }
    }

    fn is_64bit(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::X32 | Abi::Aarch64)
    }

    fn native() -> Abi {
        if cfg!(target_arch = "aarch64") {
            Abi::Aarch64
        } else {
            Abi::X86_64
        }
    }

    fn from_spec(arch: Arch) -> Option<Abi> {
        match arch {
            Arch::ScmpArchNative => Some(Abi::native()),
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchX32 => Some(Abi::X32),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            Arch::ScmpArchArm => Some(Abi::Arm),
            _ => None,
        }
    }

    /// The syscall number of `name` in this ABI.
    fn syscall(self, name: &str) -> Option<u32> {
        let nr = match self {
            Abi::X86_64 => syscalls::x86_64::Sysno::from_str(name).ok()?.id(),
            Abi::X32 => syscalls::x86_64::Sysno::from_str(name).ok()?.id() | X32_SYSCALL_BIT as i32,
            Abi::X86 => syscalls::x86::Sysno::from_str(name).ok()?.id(),
            Abi::Aarch64 => syscalls::aarch64::Sysno::from_str(name).ok()?.id(),
            Abi::Arm => syscalls::arm::Sysno::from_str(name).ok()?.id(),
        };
        u32::try_from(nr).ok()
    }
}

/// One argument comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Condition {
    index: u32,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    conditions: Vec<Condition>,
    action: u32,
}

/// The seccomp return value for an action.
fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    let data = |default: u32| errno.unwrap_or(default) & 0xffff;
    match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => RET_KILL_THREAD,
        LinuxSeccompAction::ScmpActKillProcess => RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => RET_ERRNO | data(libc::EPERM as u32),
        LinuxSeccompAction::ScmpActNotify => RET_USER_NOTIF,
        LinuxSeccompAction::ScmpActTrace => RET_TRACE | data(libc::EPERM as u32),
        LinuxSeccompAction::ScmpActLog => RET_LOG,
        LinuxSeccompAction::ScmpActAllow => RET_ALLOW,
    }
}

/// Whether a return value refuses the syscall (so unknown newer syscalls may
/// get ENOSYS instead).
fn refuses(value: u32) -> bool {
    matches!(value & 0xffff_0000, RET_KILL_THREAD | RET_TRAP | RET_ERRNO)
        || value == RET_KILL_PROCESS
}

/// Compiles the configuration's filter.
pub fn compile(spec: &LinuxSeccomp) -> Result<CompiledFilter, SeccompError> {
    let default = action_value(spec.default_action(), spec.default_errno_ret());
    if spec.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let mut abis: Vec<Abi> = spec
        .architectures()
        .iter()
        .flatten()
        .filter_map(|&a| Abi::from_spec(a))
        .collect();
    if !abis.contains(&Abi::native()) {
        abis.insert(0, Abi::native());
    }
    abis.sort();
    abis.dedup();

    let mut uses_notify = false;
    let mut per_abi: BTreeMap<Abi, BTreeMap<u32, Vec<Rule>>> = BTreeMap::new();
    for entry in spec.syscalls().iter().flatten() {
        let action = action_value(entry.action(), entry.errno_ret());
        uses_notify |= entry.action() == LinuxSeccompAction::ScmpActNotify;
        let args = entry.args().as_deref().unwrap_or(&[]);
        let mut conditions = Vec::with_capacity(args.len());
        for arg in args {
            if arg.index() > 5 {
                return Err(SeccompError::ArgIndex {
                    name: entry.names().join(","),
                    index: arg.index(),
                });
            }
            conditions.push(Condition {
                index: arg.index() as u32,
                op: arg.op(),
                value: arg.value(),
                value_two: arg.value_two().unwrap_or(0),
            });
        }
        let repeated = conditions
            .iter()
            .enumerate()
            .any(|(i, c)| conditions[..i].iter().any(|d| d.index == c.index));
        let rules: Vec<Rule> = if repeated {
            conditions
                .iter()
                .map(|c| Rule {
                    conditions: vec![*c],
                    action,
                })
                .collect()
        } else {
            vec![Rule { conditions, action }]
        };
        for &abi in &abis {
            for name in entry.names() {
                let Some(nr) = abi.syscall(name) else {
                    tracing::debug!("seccomp: syscall {name} does not exist on {abi:?}; skipped");
                    continue;
                };
                per_abi
                    .entry(abi)
                    .or_default()
                    .entry(nr)
                    .or_default()
                    .extend(rules.iter().cloned());
            }
        }
    }
    if uses_notify && spec.listener_path().is_none() {
        return Err(SeccompError::NotifyWithoutListener);
    }

    let mut asm = Assembler::default();
    let bad_arch = asm.label();
    asm.load(OFFSET_ARCH);
    // Group ABIs by audit arch (x86_64 and x32 share one).
    let mut arches: Vec<u32> = abis.iter().map(|a| a.audit_arch()).collect();
    arches.dedup();
    let entries: Vec<Label> = arches.iter().map(|_| asm.label()).collect();
    for (i, &arch) in arches.iter().enumerate() {
        let next = asm.label();
        asm.jump(Cond::Eq, arch, entries[i], next);
        asm.here(next);
    }
    asm.goto(bad_arch);
    let empty = BTreeMap::new();
    for (i, &arch) in arches.iter().enumerate() {
        asm.here(entries[i]);
        asm.load(OFFSET_NR);
        if arch == AUDIT_ARCH_X86_64 && abis.contains(&Abi::X86_64) {
            let x32 = asm.label();
            let x64 = asm.label();
            let x32_target = if abis.contains(&Abi::X32) {
                x32
            } else {
                bad_arch
            };
            asm.jump(Cond::Ge, X32_SYSCALL_BIT, x32_target, x64);
            asm.here(x64);
            emit_abi(
                &mut asm,
                Abi::X86_64,
                per_abi.get(&Abi::X86_64).unwrap_or(&empty),
                default,
            );
            asm.here(x32);
            if abis.contains(&Abi::X32) {
                emit_abi(
                    &mut asm,
                    Abi::X32,
                    per_abi.get(&Abi::X32).unwrap_or(&empty),
                    default,
                );
            } else {
                asm.goto(bad_arch);
            }
        } else {
            let abi = abis
                .iter()
                .copied()
                .find(|a| a.audit_arch() == arch)
                .unwrap_or(Abi::native());
            emit_abi(&mut asm, abi, per_abi.get(&abi).unwrap_or(&empty), default);
        }
    }
    asm.here(bad_arch);
    asm.ret(RET_KILL_THREAD);
    let program = asm.finish()?;

    let mut flags = 0u32;
    for flag in spec.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG as u32,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                libc::SECCOMP_FILTER_FLAG_TSYNC as u32
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 1 << 5,
        };
    }
    if uses_notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
    }
    Ok(CompiledFilter {
        program,
        flags,
        listener_path: uses_notify.then(|| spec.listener_path().clone()).flatten(),
        listener_metadata: spec.listener_metadata().clone(),
    })
}

/// Where a syscall number leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Straight to a return value.
    Action(u32),
    /// To the argument checks of entry `i`.
    Body(usize),
}

/// A run of consecutive syscall numbers with the same target.
#[derive(Debug, Clone, Copy)]
struct Range {
    lo: u32,
    hi: u32,
    target: Target,
}

/// Emits the dispatch for one ABI. The accumulator holds the syscall number.
///
/// Syscalls whose rules have no conditions lead straight to a shared return
/// of their action, and consecutive numbers with the same action are merged
/// into one range, so an allow-list of hundreds of syscalls becomes a few
/// dozen range checks searched in O(log n).
fn emit_abi(asm: &mut Assembler, abi: Abi, syscalls: &BTreeMap<u32, Vec<Rule>>, default: u32) {
    let mut bodies: Vec<Vec<Rule>> = Vec::new();
    let mut ranges: Vec<Range> = Vec::new();
    for (&nr, rules) in syscalls {
        let mut ordered: Vec<Rule> = rules
            .iter()
            .filter(|r| !r.conditions.is_empty())
            .cloned()
            .collect();
        let unconditional = rules
            .iter()
            .find(|r| r.conditions.is_empty())
            .map(|r| r.action);
        let target = if ordered.is_empty() {
            Target::Action(unconditional.unwrap_or(default))
        } else {
            if let Some(action) = unconditional {
                ordered.push(Rule {
                    conditions: Vec::new(),
                    action,
                });
            }
            bodies.push(ordered);
            Target::Body(bodies.len() - 1)
        };
        if target == Target::Action(default) {
            continue;
        }
        match ranges.last_mut() {
            Some(last)
                if last.hi + 1 == nr
                    && last.target == target
                    && matches!(target, Target::Action(_)) =>
            {
                last.hi = nr;
            }
            _ => ranges.push(Range {
                lo: nr,
                hi: nr,
                target,
            }),
        }
    }
    let mut actions: BTreeMap<u32, Label> = BTreeMap::new();
    let ret_default = asm.label();
    actions.insert(default, ret_default);
    if refuses(default) {
        if let Some(&max) = syscalls.keys().next_back() {
            let enosys = asm.label();
            let known = asm.label();
            asm.jump(Cond::Gt, max, enosys, known);
            asm.here(enosys);
            asm.ret(RET_ERRNO | libc::ENOSYS as u32);
            asm.here(known);
        }
    }
    let body_labels: Vec<Label> = bodies.iter().map(|_| asm.label()).collect();
    let targets: Vec<Label> = ranges
        .iter()
        .map(|r| match r.target {
            Target::Action(value) => *actions.entry(value).or_insert_with(|| asm.label()),
            Target::Body(i) => body_labels[i],
        })
        .collect();
    emit_search(asm, &ranges, &targets, 0, ranges.len(), ret_default);
    for (i, rules) in bodies.iter().enumerate() {
        asm.here(body_labels[i]);
        for rule in rules {
            if rule.conditions.is_empty() {
                asm.ret(rule.action);
                break;
            }
            let next = asm.label();
            for cond in &rule.conditions {
                let pass = asm.label();
                emit_condition(asm, abi, cond, pass, next);
                asm.here(pass);
            }
            asm.ret(rule.action);
            asm.here(next);
        }
        if rules.last().is_none_or(|r| !r.conditions.is_empty()) {
            asm.goto(ret_default);
        }
    }
    for (value, label) in actions {
        asm.here(label);
        asm.ret(value);
    }
}

/// Binary search over `ranges[lo..hi]` (sorted, disjoint); the accumulator
/// holds the syscall number and is preserved.
fn emit_search(
    asm: &mut Assembler,
    ranges: &[Range],
    targets: &[Label],
    lo: usize,
    hi: usize,
    miss: Label,
) {
    if hi - lo <= 3 {
        for i in lo..hi {
            let next = asm.label();
            let r = ranges[i];
            if r.lo == r.hi {
                asm.jump(Cond::Eq, r.lo, targets[i], next);
            } else {
                let check_lo = asm.label();
                asm.jump(Cond::Gt, r.hi, next, check_lo);
                asm.here(check_lo);
                asm.jump(Cond::Ge, r.lo, targets[i], miss);
            }
            asm.here(next);
        }
        asm.goto(miss);
        return;
    }
    let mid = lo + (hi - lo) / 2;
    let (left, right) = (asm.label(), asm.label());
    asm.jump(Cond::Ge, ranges[mid].lo, right, left);
    asm.here(left);
    emit_search(asm, ranges, targets, lo, mid, miss);
    asm.here(right);
    emit_search(asm, ranges, targets, mid, hi, miss);
}

/// Emits one argument comparison: continues at `pass` or `fail`.
fn emit_condition(asm: &mut Assembler, abi: Abi, c: &Condition, pass: Label, fail: Label) {
    let lo_off = OFFSET_ARGS + 8 * c.index;
    let hi_off = lo_off + 4;
    let (value, mask) = match c.op {
        LinuxSeccompOperator::ScmpCmpMaskedEq => (c.value_two & c.value, c.value),
        _ => (c.value, u64::MAX),
    };
    let (v_hi, v_lo) = ((value >> 32) as u32, value as u32);
    let (m_hi, m_lo) = ((mask >> 32) as u32, mask as u32);
    let wide = abi.is_64bit();
    // Each operator as: compare the high words (64-bit ABIs), then the low.
    match c.op {
        LinuxSeccompOperator::ScmpCmpEq | LinuxSeccompOperator::ScmpCmpMaskedEq => {
            if wide {
                let lo = asm.label();
                asm.load(hi_off);
                if m_hi != u32::MAX {
                    asm.and(m_hi);
                }
                asm.jump(Cond::Eq, v_hi, lo, fail);
                asm.here(lo);
            }
            asm.load(lo_off);
            if m_lo != u32::MAX {
                asm.and(m_lo);
            }
            asm.jump(Cond::Eq, v_lo, pass, fail);
        }
        LinuxSeccompOperator::ScmpCmpNe => {
            if wide {
                let lo = asm.label();
                asm.load(hi_off);
                asm.jump(Cond::Eq, v_hi, lo, pass);
                asm.here(lo);
            }
            asm.load(lo_off);
            asm.jump(Cond::Eq, v_lo, fail, pass);
        }
        LinuxSeccompOperator::ScmpCmpGt
        | LinuxSeccompOperator::ScmpCmpGe
        | LinuxSeccompOperator::ScmpCmpLt
        | LinuxSeccompOperator::ScmpCmpLe => {
            // GT/GE directly; LT = !GE and LE = !GT with the branches swapped.
            let (cond, yes, no) = match c.op {
                LinuxSeccompOperator::ScmpCmpGt => (Cond::Gt, pass, fail),
                LinuxSeccompOperator::ScmpCmpGe => (Cond::Ge, pass, fail),
                LinuxSeccompOperator::ScmpCmpLt => (Cond::Ge, fail, pass),
                _ => (Cond::Gt, fail, pass),
            };
            if wide {
                let not_greater = asm.label();
                let lo = asm.label();
                asm.load(hi_off);
                asm.jump(Cond::Gt, v_hi, yes, not_greater);
                asm.here(not_greater);
                asm.jump(Cond::Eq, v_hi, lo, no);
                asm.here(lo);
            }
            asm.load(lo_off);
            asm.jump(cond, v_lo, yes, no);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seccomp_data` for a syscall with arguments.
    fn data(arch: u32, nr: u32, args: [u64; 6]) -> Vec<u8> {
        let mut d = Vec::with_capacity(64);
        d.extend_from_slice(&nr.to_ne_bytes());
        d.extend_from_slice(&arch.to_ne_bytes());
        d.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            d.extend_from_slice(&a.to_ne_bytes());
        }
        d
    }

    fn nr(name: &str) -> u32 {
        Abi::X86_64.syscall(name).unwrap()
    }

    fn run(filter: &CompiledFilter, name: &str, args: [u64; 6]) -> u32 {
        bpf::interpret(&filter.program, &data(AUDIT_ARCH_X86_64, nr(name), args))
    }

    fn compile_json(json: &str) -> CompiledFilter {
        compile(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn allow_list_with_errno_default() {
        let f = compile_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(run(&f, "read", [0; 6]), RET_ALLOW);
        assert_eq!(run(&f, "exit_group", [0; 6]), RET_ALLOW);
        assert_eq!(run(&f, "mkdir", [0; 6]), RET_ERRNO | 38);
    }

    #[test]
    fn deny_list_with_allow_default() {
        let f = compile_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "syscalls":[{"names":["mknod","mknodat"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                            {"names":["ptrace"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
        );
        assert_eq!(run(&f, "mknodat", [0; 6]), RET_ERRNO | 1);
        assert_eq!(run(&f, "ptrace", [0; 6]), RET_KILL_PROCESS);
        assert_eq!(run(&f, "openat", [0; 6]), RET_ALLOW);
    }

    #[test]
    fn unknown_architectures_are_killed_and_x32_is_separate() {
        let f = compile_json(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#);
        assert_eq!(
            bpf::interpret(&f.program, &data(AUDIT_ARCH_ARM, 1, [0; 6])),
            RET_KILL_THREAD
        );
        let x32_read = data(AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, [0; 6]);
        assert_eq!(bpf::interpret(&f.program, &x32_read), RET_KILL_THREAD);
        let f = compile_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(bpf::interpret(&f.program, &x32_read), RET_ALLOW);
        let i386_getpid = data(AUDIT_ARCH_I386, 20, [0; 6]);
        assert_eq!(bpf::interpret(&f.program, &i386_getpid), RET_ERRNO | 1);
        let x32_getpid = data(AUDIT_ARCH_X86_64, nr("getpid") | X32_SYSCALL_BIT, [0; 6]);
        assert_eq!(bpf::interpret(&f.program, &x32_getpid), RET_ERRNO | 1);
    }

    #[test]
    fn argument_conditions() {
        let f = compile_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
              {"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_NE"}]},
              {"names":["kill"],"action":"SCMP_ACT_ERRNO","args":[{"index":1,"value":9,"op":"SCMP_CMP_EQ"}]},
              {"names":["socket"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":40,"op":"SCMP_CMP_GE"},{"index":1,"value":3,"op":"SCMP_CMP_LT"}]},
              {"names":["clone"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":268435456,"valueTwo":268435456,"op":"SCMP_CMP_MASKED_EQ"}]},
              {"names":["mmap"],"action":"SCMP_ACT_ERRNO","args":[{"index":2,"value":4294967296,"op":"SCMP_CMP_GT"}]},
              {"names":["dup3"],"action":"SCMP_ACT_ERRNO","args":[{"index":2,"value":1,"op":"SCMP_CMP_LE"}]}
            ]}"#,
        );
        let e = RET_ERRNO | 1;
        assert_eq!(run(&f, "personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "personality", [0, 0, 0, 0, 0, 0]), e);
        assert_eq!(run(&f, "personality", [8 | 1 << 32, 0, 0, 0, 0, 0]), e);
        assert_eq!(run(&f, "kill", [1, 9, 0, 0, 0, 0]), e);
        assert_eq!(run(&f, "kill", [1, 15, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "socket", [40, 2, 0, 0, 0, 0]), e);
        assert_eq!(run(&f, "socket", [40, 3, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "socket", [39, 2, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "clone", [0x1000_0011, 0, 0, 0, 0, 0]), e);
        assert_eq!(run(&f, "clone", [0x11, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "mmap", [0, 0, 1 << 33, 0, 0, 0]), e);
        assert_eq!(run(&f, "mmap", [0, 0, 1 << 32, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "mmap", [0, 0, 5, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "dup3", [0, 0, 1, 0, 0, 0]), e);
        assert_eq!(run(&f, "dup3", [0, 0, 2, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "dup3", [0, 0, 1 << 32, 0, 0, 0]), RET_ALLOW);
    }

    #[test]
    fn repeated_indexes_are_ored() {
        let f = compile_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
              {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
                 {"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(run(&f, "personality", [0; 6]), RET_ALLOW);
        assert_eq!(run(&f, "personality", [8, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&f, "personality", [4, 0, 0, 0, 0, 0]), RET_ERRNO | 1);
    }

    #[test]
    fn newer_syscalls_get_enosys_when_the_default_refuses() {
        let f = compile_json(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","openat"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert_eq!(run(&f, "clone3", [0; 6]), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(run(&f, "write", [0; 6]), RET_ERRNO | 1);
    }

    #[test]
    fn large_profiles_fit_and_dispatch() {
        let names: Vec<&str> = syscalls::x86_64::Sysno::iter()
            .map(|s| s.name())
            .filter(|n| *n != "reboot")
            .collect();
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{{"names":{},"action":"SCMP_ACT_ALLOW"}}]}}"#,
            serde_json::to_string(&names).unwrap()
        );
        let f = compile_json(&json);
        assert!(f.program.len() < 200, "{} instructions", f.program.len());
        assert_eq!(run(&f, "reboot", [0; 6]), RET_ERRNO | 1);
        for name in ["read", "write", "close", "io_uring_setup", "clone3"] {
            assert_eq!(run(&f, name, [0; 6]), RET_ALLOW, "{name}");
        }
    }

    #[test]
    fn notify_needs_a_listener() {
        let spec: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            compile(&spec),
            Err(SeccompError::NotifyWithoutListener)
        ));
    }

    #[test]
    fn bad_argument_index() {
        let spec: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
        )
        .unwrap();
        assert!(matches!(compile(&spec), Err(SeccompError::ArgIndex { .. })));
    }
}
