//! Map keys as the planner writes them: protocol numbers and names, and the
//! VIPS keys of applied services. Addresses as network-order words, VIPS keys
//! and markers and the VIP filter words are [`lb_common::keys`]'.

use lb_common::VipKey;

use crate::config::Protocol;
use crate::state::AppliedService;

/// The protocol's IP number.
pub fn protocol_number(protocol: Protocol) -> u8 {
    protocol.number()
}

/// The protocol's name as stored in [`AppliedService::protocol`].
pub fn protocol_name(protocol: Protocol) -> &'static str {
    protocol.as_str()
}

/// The VIPS key of an applied service (what [`lb_common::vip_filter_words`]
/// takes).
pub fn applied_service_key(s: &AppliedService) -> VipKey {
    VipKey::new(s.vip, s.port, applied_protocol_number(s))
}

/// The IP protocol number of an applied service ("udp" or else TCP).
pub fn applied_protocol_number(s: &AppliedService) -> u8 {
    if s.protocol == protocol_name(Protocol::Udp) {
        protocol_number(Protocol::Udp)
    } else {
        protocol_number(Protocol::Tcp)
    }
}
