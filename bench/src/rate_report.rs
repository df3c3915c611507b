//! The rate benchmark's rows: each case's median rate, the ratios to the
//! forward baseline the targets are set against, and the one-line floors'
//! verdict on whether the rate goal is within reach here.

use crate::rate::Sizes;
use crate::rate_case::{Case, FLOWS, MANY_FLOWS, Sample};
use crate::report::{Report, Row, Target};

/// Adds the rate rows and the section's note to `report`, from the samples
/// of every round (`cpu`: where they ran).
pub(crate) fn push_rows(
    report: &mut Report,
    samples: &[(Case, Sample)],
    cpu: usize,
    sizes: &Sizes,
) {
    let median = |case: Case| -> Sample {
        let mut v: Vec<Sample> = samples
            .iter()
            .filter(|(c, _)| *c == case)
            .map(|(_, s)| *s)
            .collect();
        v.sort_by(|a, b| a.pps.total_cmp(&b.pps));
        v[v.len() / 2]
    };
    let forward = median(Case::Forward);
    let encap_forward = median(Case::EncapForward);
    let routing = median(Case::Routing);
    let nft = median(Case::NftDnat);
    let lbs = median(Case::Lb);
    let lb_many_s = median(Case::LbManyFlows);
    let floor_s = median(Case::OneLineFloor);
    let floor_dense_s = median(Case::OneLineFloorDense);
    let floor_many_s = median(Case::OneLineFloorManyFlows);
    // Everything shares one core, so the difference of the per-packet times
    // (1 / rate) to the forward case is what the path costs beyond forwarding.
    let over_forward = |s: Sample| 1e9 / s.pps - 1e9 / forward.pps;
    let detail = |s: Sample| {
        format!(
            "{:.0} ns/packet on the core, {:+.0} ns over forward{}; {:.1}% of generated frames reached the sink",
            1e9 / s.pps,
            over_forward(s),
            s.program_ns.map_or(String::new(), |ns| format!(
                " (the program itself {ns:.0} ns)"
            )),
            100.0 * s.pps / s.offered
        )
    };
    let row = |name: String, value: f64, unit: &'static str, target, versus| Row {
        section: "rate",
        name,
        value,
        unit,
        target,
        versus,
    };
    // Every case's rate, in table order; lb's also as a ratio to routing.
    for (case, s) in [
        (Case::Forward, forward),
        (Case::EncapForward, encap_forward),
        (Case::Routing, routing),
        (Case::NftDnat, nft),
        (Case::Lb, lbs),
        (Case::LbManyFlows, lb_many_s),
        (Case::OneLineFloor, floor_s),
        (Case::OneLineFloorDense, floor_dense_s),
        (Case::OneLineFloorManyFlows, floor_many_s),
    ] {
        let versus = if matches!(case, Case::Lb | Case::LbManyFlows) {
            format!("{:.2}x routing; {}", s.pps / routing.pps, detail(s))
        } else {
            detail(s)
        };
        report.push(row(case.label().into(), s.pps / 1e6, "Mpps", None, versus));
    }
    report.push(row(
        "lb rate / XDP forward, 65,536 flows".into(),
        lbs.pps / forward.pps,
        "x",
        Some(Target::AtLeast(0.9)),
        String::new(),
    ));
    report.push(row(
        "lb rate / XDP forward, 1,000,000 flows".into(),
        lb_many_s.pps / forward.pps,
        "x",
        Some(Target::AtLeast(0.9)),
        String::new(),
    ));
    // Information, no target: `a`'s rate as a ratio to `b`'s, and the ns per
    // packet between them, then `more`.
    let ratio = |name: String, a: Sample, b: Sample, over: &str, more: String| {
        row(
            name,
            a.pps / b.pps,
            "x",
            None,
            format!(
                "{:+.0} ns per packet over {over}{more}",
                1e9 / a.pps - 1e9 / b.pps
            ),
        )
    };
    // Whether a floor leaves the 0.9x goal within reach.
    let reach = |floor: Sample, table: &str| {
        let (side, verdict) = if floor.pps / forward.pps < 0.9 {
            ("below", "out of reach")
        } else {
            ("at or above", "within reach")
        };
        format!("; {side} 0.9x: the rate goal is {verdict} of {table} here")
    };
    report.push(ratio(
        "one-line floor rate / XDP forward, 65,536 flows, 1 MiB".into(),
        floor_dense_s,
        forward,
        "forward",
        reach(floor_dense_s, "the least table of 16-byte entries"),
    ));
    for (flows, floor_case, lb_case) in [
        ("65,536", floor_s, lbs),
        ("1,000,000", floor_many_s, lb_many_s),
    ] {
        report.push(ratio(
            format!("one-line floor rate / XDP forward, {flows} flows"),
            floor_case,
            forward,
            "forward",
            reach(floor_case, "a one-line table of lb's size"),
        ));
        report.push(ratio(
            format!("lb rate / one-line floor, {flows} flows"),
            lb_case,
            floor_case,
            "the floor",
            String::new(),
        ));
    }
    // How far lb is from the cheapest IPIP load balancer (the same rewrite
    // and redirect, no lookups at all).
    report.push(ratio(
        "lb rate / XDP encapsulate-forward, 65,536 flows".into(),
        lbs,
        encap_forward,
        "encapsulate-forward",
        format!(
            "; encapsulate-forward {:.2}x XDP forward",
            encap_forward.pps / forward.pps
        ),
    ));
    report.push(ratio(
        "lb rate / XDP encapsulate-forward, 1,000,000 flows".into(),
        lb_many_s,
        encap_forward,
        "encapsulate-forward",
        String::new(),
    ));
    report.push(row(
        "lb rate / nftables DNAT".into(),
        lbs.pps / nft.pps,
        "x",
        Some(Target::AtLeast(5.0)),
        format!(
            "the one-line floors: {:.2}x (4 MiB), {:.2}x (1 MiB)",
            floor_s.pps / nft.pps,
            floor_dense_s.pps / nft.pps
        ),
    ));
    report.note(format!(
        "rate: one core (CPU {cpu}) runs live-frame generator -> veth -> DUT -> veth -> XDP counter at the sink \
         (the DUT and sink as softirq after each generator batch); 64-byte UDP frames, {FLOWS} (or {MANY_FLOWS}) \
         pseudo-random flows; packets counted at the sink; median of {} runs x {:.1} s after {:.1} s warm-up \
         (the first {MANY_FLOWS}-flow run warms up {:.1} s longer so that its flows are in the table); \
         the one-line floors read one 64-byte line the flow picks (4 MiB: lb's table here; 1 MiB: one \
         16-byte slot per flow, full; 32 MiB for {MANY_FLOWS} flows) and encapsulate-forward, nothing else",
        sizes.runs,
        sizes.window.as_secs_f64(),
        sizes.warmup.as_secs_f64(),
        sizes.fill.as_secs_f64()
    ));
}
