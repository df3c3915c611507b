//! Non-fatal advice about a valid config.

use super::{Config, HealthCheckKind};

/// Minimum table slots per backend for a balanced table (Maglev paper: M ≥ 100·N).
pub const SLOTS_PER_BACKEND: u64 = 100;

/// Advice about a valid config: things that work but are probably not meant.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let m = u64::from(config.maglev_table_size);
    for service in &config.services {
        let n = service.backends.len() as u64;
        if m < SLOTS_PER_BACKEND * n {
            out.push(format!(
                "services[{}]: maglev_table_size {m} is less than {SLOTS_PER_BACKEND} x {n} backends; \
                 shares will be uneven and more flows move on changes (use a prime >= {})",
                service.name,
                SLOTS_PER_BACKEND * n
            ));
        }
        if !service.backends.is_empty() && service.backends.iter().all(|b| b.drain || b.weight == 0)
        {
            out.push(format!(
                "services[{}]: no backend takes new flows (all draining or weight 0)",
                service.name
            ));
        }
        if let Some(hc) = &service.health_check
            && hc.kind == HealthCheckKind::Tcp
            && hc.path != "/"
        {
            out.push(format!(
                "services[{}].health_check: path {:?} is ignored by tcp checks (set kind: http)",
                service.name, hc.path
            ));
        }
    }
    out
}
