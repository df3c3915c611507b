//! The config fuzzer: thousands of generated configs (valid and not) and
//! random mutations of them, through the same path as a file read
//! ([`parse_bytes`]). For every input: no panic, under a second, and when it
//! is refused, at least one problem and a line on every problem (the input
//! always has a line). Deterministic (a fixed seed), so a failure reproduces.

use std::time::{Duration, Instant};

use super::super::{ConfigError, input, parse_bytes};

/// Generated inputs (each also mutated [`MUTANTS`] times).
const CASES: usize = 1000;
/// Mutations of each generated input.
const MUTANTS: usize = 3;
/// The longest any one input may take: a hang detector, not a speed target
/// (speed is the benchmarks' job). Before the input limits, the hostile shapes
/// took from 24 s (100,000 `[`) to forever (a FIFO); a debug build on a loaded
/// 2-core CI machine takes up to ~1.5 s for the slowest refused shape.
const PER_INPUT: Duration = Duration::from_secs(10);

/// xorshift64*: small, deterministic, good enough to pick things.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    /// Mostly the first `good` entries of `from`, sometimes any.
    fn mostly<'a>(&mut self, good: usize, from: &[&'a str]) -> &'a str {
        if self.chance(97) {
            from[self.below(good)]
        } else {
            self.pick(from)
        }
    }
}

const ADDRESSES: &[&str] = &[
    "198.18.3.2",
    "198.18.4.2",
    "2001:2::10",
    "198.18.300.1",
    "::",
    "\"198.18.3.7\"",
    "1",
    "x",
    "",
    "[198.18.3.2]",
];
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "7",
    "13",
    "80",
    "65535",
    "65536",
    "65537",
    "-1",
    "1.5",
    "1e9",
    "0x10",
    "99999999999999999999",
    "yes",
    "~",
    "\"80\"",
    ".inf",
];
const WORDS: &[&str] = &[
    "web", "dns", "tcp", "udp", "http", "sctp", "/", "/health", "health", "true", "false", "null",
    "\"a b\"", "'it''s'", "ünï", "",
];
const KEYS: &[&str] = &[
    "maglev_table_size",
    "conntrack_entries",
    "encapsulation",
    "services",
    "name",
    "vip",
    "port",
    "protocol",
    "backends",
    "health_check",
    "panic_threshold",
    "address",
    "weight",
    "drain",
    "kind",
    "path",
    "interval_ms",
    "timeout_ms",
    "rise",
    "fall",
    "source_v4",
    "source_v6",
    "gateway_mac",
    "wieght",
];
/// Fragments mutations insert: YAML syntax, hostile shapes, encodings.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    ": ",
    "- ",
    "? ",
    "\"",
    "'",
    "#",
    "&a ",
    "*a",
    "!!binary ",
    "!tag ",
    "\t",
    "|",
    ">",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\n",
    "  ",
    "<<: *a\n",
    "\r\n",
    "\\",
    "@",
    "`",
    "\u{feff}",
    "\u{0}",
    "é",
];

/// One generated config (valid more often than not).
fn generate(rng: &mut Rng) -> String {
    let mut t = String::new();
    if rng.chance(30) {
        t.push_str(&format!(
            "maglev_table_size: {}\n",
            rng.mostly(4, &NUMBERS[2..])
        ));
    }
    if rng.chance(20) {
        t.push_str(&format!(
            "conntrack_entries: {}\n",
            rng.mostly(5, &NUMBERS[1..])
        ));
    }
    if rng.chance(20) {
        t.push_str(&format!(
            "encapsulation:\n  source_v4: {}\n  gateway_mac: {}\n",
            rng.mostly(2, ADDRESSES),
            rng.mostly(1, &["02:00:00:00:00:01", "zz", "02-00-00-00-00-0"])
        ));
    }
    if rng.chance(5) {
        t.push_str(&format!("{}: {}\n", rng.pick(KEYS), rng.pick(WORDS)));
    }
    t.push_str("services:\n");
    for s in 0..1 + rng.below(4) {
        let flow = rng.chance(25);
        let name = if rng.chance(85) {
            format!("s{s}")
        } else {
            rng.pick(WORDS).to_string()
        };
        let vip = rng.mostly(2, ADDRESSES);
        let port = rng.mostly(4, &NUMBERS[1..]);
        let protocol = rng.mostly(2, &["tcp", "udp", "sctp", "TCP"]);
        let backends: Vec<String> = (0..1 + rng.below(3))
            .map(|_| {
                let mut b = format!("address: {}", rng.mostly(2, ADDRESSES));
                if rng.chance(30) {
                    b.push_str(&format!(", weight: {}", rng.pick(NUMBERS)));
                }
                if rng.chance(10) {
                    b.push_str(&format!(", drain: {}", rng.pick(WORDS)));
                }
                b
            })
            .collect();
        if flow {
            let list: Vec<String> = backends.iter().map(|b| format!("{{{b}}}")).collect();
            t.push_str(&format!(
                "  - {{name: {name}, vip: {vip}, port: {port}, protocol: {protocol}, backends: [{}]}}\n",
                list.join(", ")
            ));
            continue;
        }
        t.push_str(&format!(
            "  - name: {name}\n    vip: {vip}\n    port: {port}\n    protocol: {protocol}\n    backends:\n"
        ));
        for b in &backends {
            t.push_str(&format!("      - {}\n", b.replace(", ", "\n        ")));
        }
        if rng.chance(30) {
            t.push_str(&format!(
                "    health_check:\n      kind: {}\n      port: {}\n      interval_ms: {}\n      timeout_ms: {}\n",
                rng.mostly(2, &["tcp", "http", "icmp"]),
                rng.mostly(4, &NUMBERS[1..]),
                rng.mostly(1, &["1000", "0", "5"]),
                rng.mostly(1, &["500", "2000", "x"])
            ));
        }
        if rng.chance(15) {
            t.push_str(&format!(
                "    panic_threshold: {}\n",
                rng.mostly(2, &["0", "1", "1.5", "x"])
            ));
        }
        if rng.chance(5) {
            t.push_str(&format!("    {}: {}\n", rng.pick(KEYS), rng.pick(WORDS)));
        }
    }
    t
}

/// `text` changed in a few random places.
fn mutate(rng: &mut Rng, text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(9) {
            0 => {
                let token = rng.pick(TOKENS).as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
            1 => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
            2 => bytes.truncate(at),
            3 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            4 => {
                // A run of one bracket: deep flow nesting.
                let c = if rng.chance(50) { b'[' } else { b'{' };
                let n = rng.below(200);
                bytes.splice(at..at, std::iter::repeat_n(c, n));
            }
            5 => {
                // Duplicate a slice (repeated keys, lines).
                let end = (at + rng.below(200)).min(bytes.len());
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            6 => {
                // A long run of one character (long scalars, lines).
                let n = if rng.chance(80) {
                    rng.below(300)
                } else {
                    input::MAX_LINE_BYTES + rng.below(100)
                };
                bytes.splice(at..at, std::iter::repeat_n(b'n', n));
            }
            7 => {
                // Deep block nesting.
                let n = rng.below(60);
                let nested: String = (0..n).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
                bytes.splice(at..at, nested.bytes());
            }
            _ => {
                let token = rng.pick(KEYS).as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
        }
    }
    bytes
}

/// Runs one input and checks every property; `what` names it in failures.
fn check(bytes: &[u8], what: &str) {
    let started = Instant::now();
    let result = std::panic::catch_unwind(|| parse_bytes(bytes));
    let took = started.elapsed();
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned();
    let result = result.unwrap_or_else(|_| panic!("{what}: panicked on {shown:?}"));
    assert!(took < PER_INPUT, "{what}: took {took:?} on {shown:?}");
    let lines = bytes.split(|&b| b == b'\n').count();
    match result {
        Ok(_) => {}
        Err(ConfigError::Invalid(problems)) => {
            assert!(!problems.is_empty(), "{what}: refused without a reason");
            for p in &problems {
                let line = p
                    .line
                    .unwrap_or_else(|| panic!("{what}: no line for {p:?} in {shown:?}"));
                assert!(
                    (1..=lines).contains(&line),
                    "{what}: line {line} of {lines} for {p:?} in {shown:?}"
                );
            }
        }
        Err(other) => panic!("{what}: unexpected error {other} on {shown:?}"),
    }
}

#[test]
fn generated_and_mutated_configs() {
    let mut rng = Rng(0x6c62_2066_757a_7a21);
    let mut valid = 0;
    for case in 0..CASES {
        let text = generate(&mut rng);
        if parse_bytes(text.as_bytes()).is_ok() {
            valid += 1;
        }
        check(text.as_bytes(), &format!("case {case}"));
        for m in 0..MUTANTS {
            check(&mutate(&mut rng, &text), &format!("case {case} mutant {m}"));
        }
    }
    // The generator must reach the validator's success path too.
    assert!(
        valid > CASES / 20,
        "only {valid} of {CASES} generated configs were valid"
    );
}

/// The shapes of the issue, each refused quickly with a line.
#[test]
fn hostile_shapes() {
    let web = super::web("");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("100,000 [", format!("services: {}", "[".repeat(100_000)).into_bytes()),
        ("100,000 [ on lines", "[\n".repeat(100_000).into_bytes()),
        ("100,000 {", "{a: ".repeat(100_000).into_bytes()),
        ("deep block", (0..3000).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>().into_bytes()),
        ("deep dashes", format!("a: {}x\n", "- ".repeat(100_000)).into_bytes()),
        ("1 MB name", web.replace("name: web", &format!("name: {}", "n".repeat(1 << 20))).into_bytes()),
        ("two documents", format!("{web}---\n{web}").into_bytes()),
        ("bad UTF-8", [web.as_bytes(), b"\xc3\x28\n"].concat()),
        ("alias bomb", b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n".to_vec()),
        ("empty", Vec::new()),
        ("NUL", b"\0".to_vec()),
    ];
    for (what, bytes) in &cases {
        check(bytes, what);
        assert!(parse_bytes(bytes).is_err(), "{what} was accepted");
    }
}
