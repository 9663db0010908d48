//! `hafen-shim`: one small supervisor per running container.
//!
//! The daemon starts a shim for each container it starts. The shim creates
//! the container through the runtime library (in-process, no extra exec),
//! holds its stdio (pipes or a terminal), writes its log in Docker's
//! json-file format (rotated: [`logfile`]), serves attach, resize and exec
//! requests on a unix socket ([`protocol`]), and when the container exits
//! records the exit status in a file and ends. It has no async runtime and
//! one thread, so a thousand of them cost little memory; the daemon can
//! restart (or crash) while they run and finds them again.

pub mod logfile;
pub mod protocol;
pub mod rootfs;
pub mod server;
