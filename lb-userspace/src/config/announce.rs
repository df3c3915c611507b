//! The `announce:` mapping: whether this node announces its VIPs (host routes
//! its BGP daemon exports) and the kernel route protocol number of those routes.

use serde_yaml::Value;

use super::fields::{Ctx, Field, MapView};

/// Default kernel route protocol number of lb's VIP routes.
pub const DEFAULT_ROUTE_PROTOCOL: u8 = 250;

/// Route protocol numbers refused in `announce.protocol`, with their owner:
/// 0..=4 are the kernel's own (unspec, redirect, kernel, boot, static), the
/// others belong to routing daemons (iproute2's `rt_protos`), whose routes
/// lb's reconciliation must never take for its own.
const RESERVED_PROTOCOLS: &[(u8, &str)] = &[
    (0, "unspec (kernel)"),
    (1, "redirect (kernel)"),
    (2, "kernel"),
    (3, "boot (kernel)"),
    (4, "static (kernel)"),
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra (FRR)"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (17, "mrouted"),
    (18, "keepalived"),
    (42, "babel"),
    (99, "openr"),
    (186, "bgp (FRR)"),
    (187, "isis (FRR)"),
    (188, "ospf (FRR)"),
    (189, "rip (FRR)"),
    (192, "eigrp (FRR)"),
];

const ANNOUNCE_KEYS: &[&str] = &["enabled", "protocol"];

/// VIP announcement settings (`announce:` key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AnnounceConfig {
    /// True (default): announce every VIP that can take new flows. False: a
    /// graceful node drain, every VIP withdrawn while forwarding continues.
    #[schemars(default = "default_enabled")]
    pub enabled: bool,
    /// Kernel route protocol number of lb's routes (default 250).
    #[schemars(default = "default_protocol", range(min = 5))]
    pub protocol: u8,
}

/// Default of `announce.enabled` (for the JSON Schema).
fn default_enabled() -> bool {
    AnnounceConfig::default().enabled
}

/// Default of `announce.protocol` (for the JSON Schema).
fn default_protocol() -> u8 {
    DEFAULT_ROUTE_PROTOCOL
}

impl Default for AnnounceConfig {
    /// Enabled, protocol [`DEFAULT_ROUTE_PROTOCOL`].
    fn default() -> Self {
        AnnounceConfig {
            enabled: true,
            protocol: DEFAULT_ROUTE_PROTOCOL,
        }
    }
}

/// Reads the `announce:` mapping of `top`; `None` when it has a problem
/// (reported).
pub(crate) fn announce(
    ctx: &mut Ctx<'_>,
    top: &MapView<'_>,
    value: &Value,
) -> Option<AnnounceConfig> {
    let block = top.key_block(ctx, "announce");
    let line = top.key_line(ctx, "announce");
    let view = MapView::new(ctx, value, block, line, "announce".into(), ANNOUNCE_KEYS)?;
    let enabled = view.boolean(ctx, "enabled").or_default(true);
    let protocol = match view.uint(ctx, "protocol", 255) {
        Field::Absent => Some(DEFAULT_ROUTE_PROTOCOL),
        Field::Invalid => None,
        Field::Value(n) => {
            let n = n as u8;
            match RESERVED_PROTOCOLS.iter().find(|(p, _)| *p == n) {
                Some((_, owner)) => {
                    view.report(
                        ctx,
                        "protocol",
                        format!(
                            "protocol {n} is reserved for {owner}; choose a number of lb's own \
                             (default {DEFAULT_ROUTE_PROTOCOL})"
                        ),
                    );
                    None
                }
                None => Some(n),
            }
        }
    };
    Some(AnnounceConfig {
        enabled: enabled?,
        protocol: protocol?,
    })
}
