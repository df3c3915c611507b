//! The program's live copies of [`lb_common::MAP_SETTINGS`] and
//! [`lb_common::MAP_FLOW_TABLE_CONFIG`] ([`lb_common::LIVE_SETTINGS`],
//! [`lb_common::LIVE_FLOW_TABLE_CONFIG`]): globals of the program that it
//! reads at a fixed address instead of looking the pinned maps up.
//!
//! The pinned maps stay the record: what a restarted agent adopts and what
//! tools read. Every write goes to the record and then to the live copy (the
//! undo journal restores both); a program loaded by [`super::Datapath::open`]
//! gets the record copied into its live copies before it is attached, so no
//! packet ever reads an empty secret or empty settings.

use aya::Ebpf;
use lb_common::{FlowTableConfig, Settings};

use super::error::KernelError;
use super::one_entry;

/// The value of the one-entry array `name` of `ebpf`.
fn read<V: aya::Pod>(ebpf: &mut Ebpf, name: &'static str) -> Result<V, KernelError> {
    Ok(one_entry(ebpf, name)?.get(&0, 0)?)
}

/// Sets the value of the one-entry array `name` of `ebpf`.
fn write<V: aya::Pod>(ebpf: &mut Ebpf, name: &'static str, value: V) -> Result<(), KernelError> {
    one_entry(ebpf, name)?.set(0, value, 0)?;
    Ok(())
}

/// Copies the records (pinned) into the program's live copies: for a
/// program not attached yet.
pub(super) fn copy_records(ebpf: &mut Ebpf) -> Result<(), KernelError> {
    let settings: Settings = read(ebpf, lb_common::MAP_SETTINGS)?;
    write(ebpf, lb_common::LIVE_SETTINGS, settings)?;
    let config: FlowTableConfig = read(ebpf, lb_common::MAP_FLOW_TABLE_CONFIG)?;
    write(ebpf, lb_common::LIVE_FLOW_TABLE_CONFIG, config)
}

/// Writes `settings` to the record and the live copy.
pub(super) fn put_settings(ebpf: &mut Ebpf, settings: Settings) -> Result<(), KernelError> {
    write(ebpf, lb_common::MAP_SETTINGS, settings)?;
    write(ebpf, lb_common::LIVE_SETTINGS, settings)
}

/// The connection table's config, from the record.
pub(super) fn flow_table_config(ebpf: &mut Ebpf) -> Result<FlowTableConfig, KernelError> {
    read(ebpf, lb_common::MAP_FLOW_TABLE_CONFIG)
}

/// Writes the connection table's `config` to the record and the live copy.
pub(super) fn put_flow_table_config(
    ebpf: &mut Ebpf,
    config: FlowTableConfig,
) -> Result<(), KernelError> {
    write(ebpf, lb_common::MAP_FLOW_TABLE_CONFIG, config)?;
    write(ebpf, lb_common::LIVE_FLOW_TABLE_CONFIG, config)
}

/// The settings, from the record.
pub(super) fn settings(ebpf: &mut Ebpf) -> Result<Settings, KernelError> {
    read(ebpf, lb_common::MAP_SETTINGS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_live_copies_are_the_datapaths_sections() {
        let layouts = crate::kernel::layout::object_layouts(crate::object::EBPF_OBJECT).unwrap();
        for (record, live) in [
            (lb_common::MAP_SETTINGS, lb_common::LIVE_SETTINGS),
            (
                lb_common::MAP_FLOW_TABLE_CONFIG,
                lb_common::LIVE_FLOW_TABLE_CONFIG,
            ),
        ] {
            assert_eq!(
                layouts[live].value_size, layouts[record].value_size,
                "{live}"
            );
            assert_eq!(layouts[live].map_type, 2, "{live}: BPF_MAP_TYPE_ARRAY");
        }
    }
}
