//! hafen's image builder: `hafen build` and `POST /build`.
//!
//! What is pure lives here: the Dockerfile parser, shell-style word
//! expansion, `.dockerignore` patterns, the stages and their order, and
//! the cache keys. The engine runs the steps (containers, snapshots,
//! commits).

pub mod builder;
pub mod copy;
pub mod dockerignore;
pub mod expand;
pub mod instructions;
pub mod syntax;
