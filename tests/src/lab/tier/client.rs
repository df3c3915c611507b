//! Tier client flows: long-lived TCP and UDP flows spread over the client's
//! source addresses (round robin), so the router's layer-4 ECMP hash sees
//! many addresses and ports.

use std::net::SocketAddr;
use std::sync::Arc;

use super::plan::client_sources;
use super::sockets::{tcp_connect_from, udp_connect_from};
use crate::lab::error::{LabError, Result};
use crate::lab::flows::{CONNECT_TIMEOUT, FlowSet, tcp_flow};
use crate::lab::netns::NetNs;
use crate::lab::udp::UdpFlow;

/// Opens `n` long-lived TCP connections to `dst`, connection *i* from source
/// address *i* mod 8; fails if any cannot be opened.
pub fn open_tcp(ns: &Arc<NetNs>, dst: SocketAddr, n: usize) -> Result<FlowSet> {
    let sources = client_sources(dst.is_ipv6());
    ns.run(|| {
        let flows = (0..n)
            .map(|i| {
                let src = sources[i % sources.len()];
                tcp_connect_from(src, dst, CONNECT_TIMEOUT)
                    .and_then(tcp_flow)
                    .map_err(LabError::io(format!("long-lived tcp #{i} {src} -> {dst}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FlowSet { flows })
    })?
}

/// Opens `n` UDP flows to `dst` from the source addresses in turn and learns
/// each one's backend; fails if any gets no answer.
pub fn open_udp(ns: &Arc<NetNs>, dst: SocketAddr, n: usize) -> Result<Vec<UdpFlow>> {
    let sources = client_sources(dst.is_ipv6());
    ns.run(|| {
        (0..n)
            .map(|i| {
                let src = sources[i % sources.len()];
                let what = format!("udp flow #{i} {src} -> {dst}");
                let socket = udp_connect_from(src, dst).map_err(LabError::io(what.clone()))?;
                UdpFlow::start(socket, &what)
            })
            .collect()
    })?
}

/// Pings every healthy UDP flow once; returns how many are broken in total.
pub fn ping_udp(flows: &mut [UdpFlow]) -> usize {
    for flow in flows.iter_mut() {
        flow.ping();
    }
    flows.iter().filter(|f| f.broken.is_some()).count()
}
