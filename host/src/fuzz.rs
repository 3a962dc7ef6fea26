//! Test support: a small, deterministic, time-bounded mutation fuzzer for the parsers an
//! attacker reaches (manifests, names and routes, multipart uploads, launch requests, the
//! token header). Seeds are committed under `host/fuzz-seeds/KIND/`; each run mutates them
//! the same way (a fixed-seed generator), so a crash found once is found again.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one parser is fuzzed per test run.
const BUDGET: Duration = Duration::from_secs(3);
/// At most this many inputs per parser and run (the time budget usually ends it first).
const MAX_CASES: usize = 200_000;

/// The committed seeds of `kind`.
fn seeds(kind: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz-seeds")
        .join(kind);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds.sort();
    seeds
}

/// xorshift64*: deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

/// Bytes that tend to matter to parsers.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\r\n",
    b"\n",
    b"\"",
    b"'",
    b"=",
    b"[",
    b"]",
    b"{",
    b"}",
    b"/",
    b"..",
    b"%",
    b"--",
    b"\\",
    b"\xff",
    b"\xc3",
    b"9999999999999999999999",
    b"-1",
    b" ",
    b"\t",
    b"_wasmount",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut input = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => input
                .splice(
                    at..at,
                    INTERESTING[rng.below(INTERESTING.len())].iter().copied(),
                )
                .for_each(drop),
            2 => input.truncate(at),
            3 if !input.is_empty() => {
                let end = (at + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let piece = other[from..]
                    .iter()
                    .take(rng.below(64))
                    .copied()
                    .collect::<Vec<_>>();
                input.splice(at..at, piece).for_each(drop);
            }
            _ => {
                let repeat = input[at.min(input.len())..]
                    .iter()
                    .take(8)
                    .copied()
                    .collect::<Vec<_>>();
                for _ in 0..rng.below(64) {
                    input.extend_from_slice(&repeat);
                }
            }
        }
    }
    input
}

/// Runs `parse` on the seeds of `kind` and on mutations of them, within the time budget; a
/// panic fails the test with the input that caused it.
pub(crate) fn fuzz(kind: &str, mut parse: impl FnMut(&[u8])) {
    let seeds = seeds(kind);
    for seed in &seeds {
        parse(seed);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    let mut cases = 0;
    while cases < MAX_CASES && started.elapsed() < BUDGET {
        let input = mutate(&mut rng, &seeds);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
        assert!(
            outcome.is_ok(),
            "{kind}: the parser panicked on {:?}",
            String::from_utf8_lossy(&input)
        );
        cases += 1;
    }
    assert!(cases > 0);
}
