//! Layer unpack throughput: one layer blob (plain, gzip or zstd)
//! decompressed, hashed (its diff ID) and applied into a new directory, as
//! the image store unpacks a layer; prints the uncompressed MB/s.
//!
//! Usage: `cargo run --release -p hafen-snapshot --example unpack -- LAYER DIR`
//! (DIR must not exist; it is left behind for the caller to remove).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use hafen_oci::digest::{Algorithm, HashingReader};
use hafen_snapshot::apply::{Options, apply};
use hafen_snapshot::{Whiteouts, compression};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, layer, dir] = args.as_slice() else {
        eprintln!("usage: unpack LAYER DIR");
        std::process::exit(2);
    };
    std::fs::create_dir(dir).unwrap();
    let started = std::time::Instant::now();
    let file = std::fs::File::open(layer).unwrap();
    let (kind, decompressed) = compression::decompress(file).unwrap();
    let mut hashing = compression::read_ahead(HashingReader::new(
        compression::read_ahead(decompressed),
        Algorithm::Sha256,
    ));
    let applied = apply(
        &mut hashing,
        std::path::Path::new(dir),
        &Options {
            whiteouts: Whiteouts::Overlay,
            lowers: &[],
            chown: true,
        },
    )
    .unwrap();
    let (diff_id, size) = hashing.finish().unwrap().finish();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{kind:?}: {size} bytes, {} entries, {diff_id} in {secs:.3} s: {:.0} MB/s",
        applied.entries,
        size as f64 / 1e6 / secs
    );
}
