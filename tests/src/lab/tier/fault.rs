//! A silent node failure: every frame on the router's link to the node is
//! dropped in both directions (nftables `netdev` ingress and egress hooks on
//! the router's veth) while the carrier stays up, so only BFD can notice.
//! Dropping on the node's own side is not enough: its XDP program runs before
//! netfilter and would keep forwarding whatever still reaches it.

use crate::lab::cmd;
use crate::lab::error::Result;

/// The nftables table name used for `iface`.
fn table(iface: &str) -> String {
    format!("lbtier_fail_{}", iface.replace('-', "_"))
}

/// The nft script that drops every frame in and out of `iface` (pure).
pub fn blackhole_script(iface: &str) -> String {
    format!(
        "table netdev {t} {{\n  chain in {{ type filter hook ingress device \"{iface}\" priority -500; policy drop; }}\n  \
         chain out {{ type filter hook egress device \"{iface}\" priority -500; policy drop; }}\n}}\n",
        t = table(iface)
    )
}

/// Starts dropping every frame on `iface` in `ns`.
pub fn blackhole(ns: &str, iface: &str) -> Result<()> {
    let script =
        std::env::temp_dir().join(format!("{}.nft", crate::lab::netns::unique_name("nft")));
    std::fs::write(&script, blackhole_script(iface)).map_err(crate::lab::error::LabError::io(
        format!("write {}", script.display()),
    ))?;
    let result = cmd::exec_in(ns, "nft", &["-f", &script.display().to_string()]).map(drop);
    let _ = std::fs::remove_file(&script);
    result
}

/// Lifts [`blackhole`].
pub fn restore(ns: &str, iface: &str) -> Result<()> {
    cmd::exec_in(ns, "nft", &["delete", "table", "netdev", &table(iface)]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::blackhole_script;

    #[test]
    fn drops_both_directions_of_one_device() {
        let s = blackhole_script("r-n2");
        assert!(s.starts_with("table netdev lbtier_fail_r_n2 {"));
        assert!(s.contains("hook ingress device \"r-n2\" priority -500; policy drop;"));
        assert!(s.contains("hook egress device \"r-n2\" priority -500; policy drop;"));
    }
}
