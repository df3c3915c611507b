//! Pinned maps opened by another process than the agent (`lb stats`,
//! `lb watch`, the metrics endpoint read counters this way).

use std::path::Path;

use aya::maps::{Map, MapData, MapError, PerCpuArray};

/// Opens the per-CPU array pinned at `pin`.
pub fn per_cpu_array<V: aya::Pod>(pin: &Path) -> Result<PerCpuArray<MapData, V>, MapError> {
    let data = MapData::from_pin(pin)?;
    PerCpuArray::try_from(Map::from_map_data(data)?)
}
