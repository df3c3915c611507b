//! The live status page (issue 16) in a real browser: the lab with `lb run
//! --metrics 127.0.0.1:9100` in the load balancer's namespace, Debian's
//! headless Chromium in the same namespace opening `http://127.0.0.1:9100/`,
//! and checks on the rendered DOM of that one page session: every backend
//! appears with its state, its packet counter rises while a client opens
//! connections, the charts have points, and a backend added to the YAML shows
//! up without reloading the page, within a few seconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lb_tests::browser::{Browser, Page};
use lb_tests::lab::{LabConfig, Scenario, addr};
use serde_json::Value;

const METRICS: &str = "127.0.0.1:9100";
/// How long the page may take to show a change (it polls every second).
const PAGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a cold Chromium may take to load and first render the page.
const FIRST_RENDER_TIMEOUT: Duration = Duration::from_secs(20);

/// What the page shows, read from its DOM.
const READ_PAGE: &str = r#"(() => !document.getElementById("error")
? JSON.stringify({ polls: 0, backends: [], loading: document.readyState })
: JSON.stringify({
  polls: Number(document.body.dataset.polls || 0),
  attached: (document.getElementById("attached") || {}).textContent || "",
  error: document.getElementById("error").hidden ? "" : document.getElementById("error").textContent,
  backends: Array.from(document.querySelectorAll("tr.backend")).map((r) => ({
    service: r.dataset.service,
    backend: r.dataset.backend,
    state: r.querySelector(".state").textContent,
    packets: Number(r.querySelector(".packets").textContent),
  })),
  chart_points: Array.from(document.querySelectorAll("canvas.chart")).map((c) => Number(c.dataset.points || 0)),
  tx: Number((document.querySelector('tr.counter[data-counter="tx"] .count') || {}).textContent || 0),
}))()"#;

/// Renders a synthetic report with the tier fields and reads the result back.
const TIER_RENDER: &str = r#"(() => {
  render({
    iface: "l0", attached: true, xdp_mode: "native", applied_at_unix_ms: 1, last_apply_s: 0.01,
    interval_s: null, draining: true,
    vips: [{ vip: "198.18.100.1", announced: false, reason: "draining" },
           { vip: "2001:2:0:100::1", announced: true, reason: null }],
    services: [{ name: "web", vip: "198.18.100.1", port: 80, protocol: "tcp", table_size: 13,
      panic: false, packets: 1, bytes: 1, no_backend: 0, rate: null, fingerprint: 12345, backends: [] }],
    global: { tx: 1 }, global_rate: null,
  });
  return document.getElementById("summary").textContent + " | " +
    document.querySelector(".service h2").textContent;
})()"#;

fn read(browser: &mut Browser, page: &Page) -> Value {
    let text = browser.eval(page, READ_PAGE).expect("evaluate in the page");
    serde_json::from_str(text.as_str().unwrap_or("{}")).expect("page JSON")
}

/// Polls the page's DOM until `done` holds; returns it and the time it took.
fn wait_page(
    browser: &mut Browser,
    page: &Page,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Value) -> bool,
) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let view = read(browser, page);
        if done(&view) {
            return (view, start.elapsed());
        }
        assert!(
            start.elapsed() < timeout,
            "page never showed {what} within {timeout:?}: {view}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn web_packets(view: &Value, backend: &str) -> Option<u64> {
    view["backends"].as_array()?.iter().find_map(|b| {
        (b["service"] == "web" && b["backend"] == backend).then(|| b["packets"].as_u64())?
    })
}

fn backend(index: u8) -> String {
    addr::backend_link(index).host(false).to_string()
}

#[test]
fn status_page_shows_live_counters_and_new_backends_in_chromium() {
    let mut s = Scenario::start_with_args(3, LabConfig::equal(2), &["--metrics", METRICS])
        .expect("scenario");
    let web = SocketAddr::new(addr::vip(false), addr::TCP_PORT);
    let churn = s
        .client
        .churn(web, 40, Duration::from_secs(40))
        .expect("client load");

    let mut browser = Browser::start(s.lab.lb_ns.name(), s.lab.scratch()).expect("chromium");
    let page = browser
        .open(&format!("http://{METRICS}/"))
        .expect("open the page");

    // Every backend of the config, with its state, once the page polled.
    let (first, took) = wait_page(
        &mut browser,
        &page,
        "both backends",
        FIRST_RENDER_TIMEOUT,
        |v| {
            v["polls"].as_u64() >= Some(1)
                && web_packets(v, &backend(1)).is_some()
                && web_packets(v, &backend(2)).is_some()
        },
    );
    println!("page rendered both backends {took:?} after opening");
    assert!(
        first["attached"].as_str().unwrap().starts_with("attached"),
        "{first}"
    );
    assert_eq!(first["error"], "", "{first}");
    let services: Vec<&str> = first["backends"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["service"].as_str())
        .collect();
    for svc in ["web", "dns", "web6", "dns6"] {
        assert_eq!(
            services.iter().filter(|s| **s == svc).count(),
            2,
            "{svc}: {first}"
        );
    }
    assert!(
        first["backends"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["state"] == "active"),
        "{first}"
    );

    // The same page session shows the counters rising, and charts with points.
    let before =
        web_packets(&first, &backend(1)).unwrap() + web_packets(&first, &backend(2)).unwrap();
    let (rising, _) = wait_page(
        &mut browser,
        &page,
        "rising packet counters",
        PAGE_TIMEOUT,
        |v| {
            let now =
                web_packets(v, &backend(1)).unwrap_or(0) + web_packets(v, &backend(2)).unwrap_or(0);
            now > before && v["polls"].as_u64() >= first["polls"].as_u64().map(|p| p + 2)
        },
    );
    assert!(rising["tx"].as_u64() > Some(0), "{rising}");
    assert!(
        rising["chart_points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p.as_u64() >= Some(2)),
        "charts without points: {rising}"
    );

    // A backend added to the YAML appears in the open page within seconds.
    let saved = Instant::now();
    s.edit(|c| {
        c.add(3, 1);
    })
    .expect("add backend 3");
    let (added, _) = wait_page(
        &mut browser,
        &page,
        "the added backend",
        PAGE_TIMEOUT,
        |v| web_packets(v, &backend(3)).is_some(),
    );
    let shown = saved.elapsed();
    println!("backend added in the YAML shown by the page {shown:?} after the save");
    assert!(shown < PAGE_TIMEOUT, "{added}");

    // The tier fields of `lb stats --json` (VIP announcements, draining, table
    // fingerprints) render when present: one synthetic report through the
    // page's own renderer.
    let tier = browser
        .eval(&page, TIER_RENDER)
        .expect("render a report with tier fields");
    let tier = tier.as_str().unwrap_or_default();
    for wanted in [
        "DRAINING",
        "198.18.100.1 withdrawn",
        "2001:2:0:100::1 announced",
        "table fingerprint 12345",
    ] {
        assert!(tier.contains(wanted), "{wanted:?} not rendered: {tier}");
    }

    let png = browser.screenshot(&page).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Some(path) = std::env::var_os("LB_STATUS_PAGE_PNG") {
        std::fs::write(&path, &png).expect("write the screenshot");
    }

    let report = churn.finish().expect("client load");
    assert_eq!(report.failed, 0, "{:?}", report.errors);
}
