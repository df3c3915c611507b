//! The short datapath fuzz run of `cargo xtask test` (the long one:
//! `cargo xtask fuzz --frames N`): 50,000 generated and mutated frames through
//! the real program, every outcome checked (see `lb_tests::fuzz`).

use lb_tests::fuzz;

/// Frames of the short run.
const FRAMES: u64 = 50_000;

#[test]
fn fifty_thousand_fuzzed_frames_keep_every_rule() {
    let report = fuzz::run(FRAMES, 0x5eed);
    eprint!("{report}");
    assert_eq!(report.frames, FRAMES);
    assert_eq!(report.failed, 0, "{report}");
    // The generator reaches every outcome the rules speak of (otherwise
    // the run would prove little).
    for label in [
        "pass_not_vip",
        "pass_unsupported",
        "drop_malformed",
        "drop_fragment",
        "drop_too_big",
        "drop_no_backend",
        "tx",
        "redirect",
        "icmp_echo_reply",
    ] {
        assert!(
            report.terminal.get(label).is_some_and(|&n| n > 0),
            "no {label} frame:\n{report}"
        );
    }
    assert!(report.icmp_errors_forwarded > 0, "{report}");
    assert!(report.too_big_sent > 0, "{report}");
    assert!(report.gue_encapsulated > 0, "no GUE frame:\n{report}");
    assert!(
        report.second_chance > 0,
        "no GUE frame with a hint:\n{report}"
    );
}
