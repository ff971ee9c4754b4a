//! The ready index's cost, in a release build on the machine at hand:
//!
//! ```sh
//! cargo run --release -p coper-shared --example ready_stretch -- 2000
//! ```
//!
//! One guess of a birth date (what a thief of a kiosk disk pays per try) with the fast hash of
//! before and with the stretch of now, and a kiosk's whole check against a list of N entries.
//! Figures go to docs/BENCHMARKS.md and docs/SECURITY.md.

use std::time::Instant;

use coper_shared::ready_index::{Permit, ReadyEntry, Stretch, TypedBirth};
use sha2::Digest;

fn main() {
    let entries: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let stretch = Stretch {
        salt: "0123456789abcdef0123456789abcdef".into(),
        memory_kib: Stretch::MEMORY_KIB,
        passes: Stretch::PASSES,
    };
    // Before: a guess of a birth date cost one SHA-256 of a short input.
    let rounds = 1_000_000u32;
    let started = Instant::now();
    let mut acc = 0u8;
    for n in 0..rounds {
        let digest = sha2::Sha256::digest(format!("salt\0w\0rossi\0{n}").as_bytes());
        acc ^= digest[0];
    }
    let fast = started.elapsed() / rounds;
    // Now: a guess costs one stretch.
    let rounds = 20u32;
    let started = Instant::now();
    for n in 0..rounds {
        acc ^= stretch
            .key(&format!("1990-05-{:02}", n % 28 + 1))
            .as_bytes()[0];
    }
    let slow = started.elapsed() / rounds;
    // A kiosk's check: three stretches, then the fast hashes over the list.
    let list: Vec<ReadyEntry> = (0..entries)
        .map(|n| {
            let born = format!("19{:02}-{:02}-{:02}", n % 80 + 20, n % 12 + 1, n % 28 + 1);
            ReadyEntry::new(
                &Permit {
                    id: n as i64,
                    surname: &format!("Persona{n}"),
                    given_names: "Nome",
                    birth_date: &born,
                    fingerprint_date: coper_shared::jiff::civil::date(2026, 10, 2),
                    receipt: None,
                    pratica: None,
                },
                &format!("{n:016x}"),
                &stretch.key(&born),
            )
        })
        .collect();
    let started = Instant::now();
    let birth = TypedBirth::new(&stretch, coper_shared::jiff::civil::date(1975, 3, 14));
    let found = list
        .iter()
        .filter(|e| e.matches_name("Nessuno", "Mai", &birth))
        .count();
    let check = started.elapsed();
    println!(
        "guess of a birth date: {:.2} µs before (SHA-256), {:.1} ms now (Argon2id {} KiB, {} passes): {:.0}x",
        fast.as_secs_f64() * 1e6,
        slow.as_secs_f64() * 1e3,
        stretch.memory_kib,
        stretch.passes,
        slow.as_secs_f64() / fast.as_secs_f64()
    );
    println!(
        "a kiosk's check against {entries} entries: {:.0} ms ({found} found, {acc})",
        check.as_secs_f64() * 1e3
    );
}
