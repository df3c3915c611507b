//! Katran's XDP balancer (`balancer.bpf.c`, built outside this repository by
//! `bench/katran/build.sh`), loaded with aya and configured like lb's
//! per-packet case: one TCP VIP, its consistent-hashing ring filled over the
//! reals, the default MAC in `ctl_array`, and one LRU of [`LRU_SIZE`] flows
//! per CPU in `lru_mapping`, as `katran/lib/KatranLb.cpp` sets them up.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, ArrayOfMaps, HashMap, Map, MapData, PerCpuArray},
    programs::{ProgramFd, Xdp},
};

/// The default build (`MAX_CONN_RATE` 125,000 new flows/s per CPU).
pub(crate) const DEFAULT_OBJECT: &str = "balancer.bpf.o";
/// The build that records every new flow in its LRU.
pub(crate) const INSERT_OBJECT: &str = "balancer-insert.bpf.o";

/// Katran's `MAX_VIPS`: its global counters live past the per-VIP ones.
const MAX_VIPS: u32 = 512;
/// Katran's `RING_SIZE`: ring slots per VIP.
pub(crate) const RING_SIZE: u32 = 65537;
/// `stats[MAX_VIPS + LRU_MISS_CNTR]`: v1 TCP SYNs, v2 other TCP packets that
/// missed the LRU.
const LRU_MISS_CNTR: u32 = 1;
/// Flows per CPU's LRU (Katran's userspace: its configured LRU size over the
/// forwarding cores).
pub(crate) const LRU_SIZE: u32 = 1 << 20;
/// `BPF_MAP_TYPE_LRU_HASH`, what `KatranLb::createLruMap` creates (no flags).
const BPF_MAP_TYPE_LRU_HASH: u32 = 9;
/// `IPPROTO_TCP`.
const PROTO_TCP: u8 = 6;

/// `struct vip_definition` (20 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
struct VipDefinition {
    /// IPv4 in the first 4 bytes, network order.
    vip: [u8; 16],
    /// Network order.
    port: [u8; 2],
    proto: u8,
    pad: u8,
}

/// `struct vip_meta`.
#[repr(C)]
#[derive(Clone, Copy)]
struct VipMeta {
    flags: u32,
    vip_num: u32,
}

/// `struct real_definition` (20 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
struct RealDefinition {
    /// IPv4 in the first 4 bytes, network order.
    dst: [u8; 16],
    /// 0: an IPv4 real.
    flags: u8,
    pad: [u8; 3],
}

/// `struct flow_key` (40 bytes; the program zeroes its padding).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct FlowKey {
    /// IPv4 in the first 4 bytes, network order.
    src: [u8; 16],
    /// IPv4 in the first 4 bytes, network order.
    dst: [u8; 16],
    /// Source port then destination port, network order.
    ports: [u8; 4],
    proto: u8,
    pad: [u8; 3],
}

impl FlowKey {
    /// A TCP/IPv4 flow.
    pub(crate) fn tcp_v4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Self {
        let mut key = FlowKey {
            src: [0; 16],
            dst: [0; 16],
            ports: [0; 4],
            proto: PROTO_TCP,
            pad: [0; 3],
        };
        key.src[..4].copy_from_slice(&src.octets());
        key.dst[..4].copy_from_slice(&dst.octets());
        key.ports[..2].copy_from_slice(&sport.to_be_bytes());
        key.ports[2..].copy_from_slice(&dport.to_be_bytes());
        key
    }
}

/// `struct real_pos_lru` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
struct RealPosLru {
    /// Index into `reals`.
    pos: u32,
    pad: u32,
    /// Last use, UDP only.
    atime: u64,
}

/// `struct lb_stats`.
#[repr(C)]
#[derive(Clone, Copy)]
struct LbStats {
    v1: u64,
    v2: u64,
}

// SAFETY: repr(C), integers and byte arrays only, padding spelled out.
unsafe impl aya::Pod for VipDefinition {}
// SAFETY: as above.
unsafe impl aya::Pod for VipMeta {}
// SAFETY: as above.
unsafe impl aya::Pod for RealDefinition {}
// SAFETY: as above.
unsafe impl aya::Pod for FlowKey {}
// SAFETY: as above (4 + 4 + 8).
unsafe impl aya::Pod for RealPosLru {}
// SAFETY: as above.
unsafe impl aya::Pod for LbStats {}

/// Fails, naming the file and how to build it, unless `dir` holds both
/// builds (checked before any benchmark runs).
pub(crate) fn check_objects(dir: &Path) -> Result<()> {
    for object in [DEFAULT_OBJECT, INSERT_OBJECT] {
        let path = dir.join(object);
        ensure!(
            path.is_file(),
            "--katran {}: no {object} there (build Katran's objects with \
             bench/katran/build.sh KATRAN_GIT_DIR {})",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// One of Katran's builds, loaded and configured.
pub(crate) struct Katran {
    ebpf: Ebpf,
    /// Every CPU's LRU (`lru_mapping[cpu]` holds its own reference too).
    lrus: Vec<(u32, HashMap<MapData, FlowKey, RealPosLru>)>,
    /// Where it was loaded from, for messages.
    object: PathBuf,
}

impl Katran {
    /// Loads `dir/object` and configures it: one TCP service `vip:port`
    /// (vip_num 0, no flags), `reals` (indexes 1..), the ring slot `i` on real
    /// `1 + i % reals.len()`, the default MAC, one LRU per CPU.
    pub(crate) fn load(
        dir: &Path,
        object: &str,
        vip: Ipv4Addr,
        port: u16,
        reals: &[Ipv4Addr],
    ) -> Result<Self> {
        let path = dir.join(object);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "read Katran's object {} (build it with bench/katran/build.sh KATRAN_GIT_DIR {})",
                path.display(),
                dir.display()
            )
        })?;
        let mut ebpf = EbpfLoader::new()
            .load(&bytes)
            .with_context(|| format!("aya could not load Katran's {}", path.display()))?;
        let prog: &mut Xdp = ebpf
            .program_mut("balancer_ingress")
            .with_context(|| format!("{}: no program balancer_ingress", path.display()))?
            .try_into()?;
        prog.load()
            .with_context(|| format!("verifier rejected {}", path.display()))?;
        let mut katran = Katran {
            ebpf,
            lrus: Vec::new(),
            object: path,
        };
        katran.configure(vip, port, reals)?;
        Ok(katran)
    }

    fn configure(&mut self, vip: Ipv4Addr, port: u16, reals: &[Ipv4Addr]) -> Result<()> {
        ensure!(!reals.is_empty(), "Katran needs at least one real");
        let mut def = VipDefinition {
            vip: [0; 16],
            port: port.to_be_bytes(),
            proto: PROTO_TCP,
            pad: 0,
        };
        def.vip[..4].copy_from_slice(&vip.octets());
        let mut vips: HashMap<_, VipDefinition, VipMeta> = HashMap::try_from(self.map("vip_map")?)?;
        vips.insert(
            def,
            VipMeta {
                flags: 0,
                vip_num: 0,
            },
            0,
        )
        .context("Katran vip_map")?;

        let mut real_defs: Array<_, RealDefinition> = Array::try_from(self.map("reals")?)?;
        for (i, real) in reals.iter().enumerate() {
            let mut dst = [0; 16];
            dst[..4].copy_from_slice(&real.octets());
            let def = RealDefinition {
                dst,
                flags: 0,
                pad: [0; 3],
            };
            real_defs
                .set(i as u32 + 1, def, 0)
                .context("Katran reals")?;
        }

        let mut ring: Array<_, u32> = Array::try_from(self.map("ch_rings")?)?;
        let n = reals.len() as u32;
        for slot in 0..RING_SIZE {
            ring.set(slot, 1 + slot % n, 0).context("Katran ch_rings")?;
        }

        // ctl_array[0]: the MAC every encapsulated packet is sent to (Katran's
        // default gateway's).
        let mut ctl: Array<_, [u8; 8]> = Array::try_from(self.map("ctl_array")?)?;
        ctl.set(0, [0x02, 0, 0, 0, 0, 0x01, 0, 0], 0)
            .context("Katran ctl_array")?;

        let cpus = aya::util::online_cpus().map_err(|(_, e)| e)?;
        for cpu in cpus {
            let data = MapData::create(
                aya_obj::Map::new_from_params(
                    BPF_MAP_TYPE_LRU_HASH,
                    size_of::<FlowKey>() as u32,
                    size_of::<RealPosLru>() as u32,
                    LRU_SIZE,
                    0,
                ),
                &format!("katran_lru{cpu}"),
                None,
            )
            .with_context(|| format!("create Katran's LRU for CPU {cpu}"))?;
            let lru: HashMap<MapData, FlowKey, RealPosLru> =
                HashMap::try_from(Map::from_map_data(data)?)?;
            let mut mapping: ArrayOfMaps<_, HashMap<MapData, FlowKey, RealPosLru>> =
                ArrayOfMaps::try_from(self.map("lru_mapping")?)?;
            mapping
                .set(cpu, &lru, 0)
                .with_context(|| format!("Katran lru_mapping[{cpu}]"))?;
            self.lrus.push((cpu, lru));
        }
        Ok(())
    }

    fn map(&mut self, name: &str) -> Result<&mut Map> {
        let object = self.object.display().to_string();
        self.ebpf
            .map_mut(name)
            .with_context(|| format!("{object}: no map {name}"))
    }

    /// The program, for the wrapper's `TARGET`.
    pub(crate) fn prog_fd(&self) -> Result<ProgramFd> {
        crate::per_packet::prog_fd(&self.ebpf, "balancer_ingress")
    }

    /// The index in `lrus` of the LRU of the CPU this thread runs on, and
    /// that CPU.
    fn this_cpu_lru(&self) -> Result<(usize, u32)> {
        let cpu = current_cpu()?;
        let i = self
            .lrus
            .iter()
            .position(|(c, _)| *c == cpu)
            .with_context(|| format!("no Katran LRU for CPU {cpu}"))?;
        Ok((i, cpu))
    }

    /// Records `flows` (key, real index) in the LRU of the CPU this thread
    /// runs on, as if each had been forwarded once.
    pub(crate) fn pin_flows(
        &mut self,
        flows: impl IntoIterator<Item = (FlowKey, u32)>,
    ) -> Result<()> {
        let (i, cpu) = self.this_cpu_lru()?;
        let lru = &mut self.lrus[i].1;
        for (key, pos) in flows {
            lru.insert(
                key,
                RealPosLru {
                    pos,
                    pad: 0,
                    atime: 0,
                },
                0,
            )
            .with_context(|| format!("Katran LRU of CPU {cpu}"))?;
        }
        Ok(())
    }

    /// Whether the LRU of the CPU this thread runs on holds `key`.
    pub(crate) fn has_flow(&self, key: &FlowKey) -> Result<bool> {
        let (i, cpu) = self.this_cpu_lru()?;
        match self.lrus[i].1.get(key, 0) {
            Ok(_) => Ok(true),
            Err(aya::maps::MapError::KeyNotFound) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("Katran LRU of CPU {cpu}")),
        }
    }

    /// TCP packets other than SYNs that missed the LRU so far (all CPUs).
    pub(crate) fn lru_misses(&self) -> Result<u64> {
        let stats: PerCpuArray<_, LbStats> = PerCpuArray::try_from(
            self.ebpf
                .map("stats")
                .with_context(|| format!("{}: no map stats", self.object.display()))?,
        )?;
        let per_cpu = stats.get(&(MAX_VIPS + LRU_MISS_CNTR), 0)?;
        Ok(per_cpu.iter().map(|s| s.v2).sum())
    }
}

/// The CPU the calling thread runs on.
pub(crate) fn current_cpu() -> Result<u32> {
    // SAFETY: no arguments; returns -1 on error.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).with_context(|| format!("sched_getcpu: {}", std::io::Error::last_os_error()))
}

#[cfg(test)]
mod tests {
    use super::{FlowKey, RealDefinition, RealPosLru, VipDefinition, VipMeta, check_objects};

    #[test]
    fn structs_have_katrans_layout() {
        assert_eq!(size_of::<VipDefinition>(), 20);
        assert_eq!(size_of::<VipMeta>(), 8);
        assert_eq!(size_of::<RealDefinition>(), 20);
        assert_eq!(size_of::<FlowKey>(), 40);
        assert_eq!(size_of::<RealPosLru>(), 16);
        let key = FlowKey::tcp_v4(
            "198.18.16.1".parse().unwrap(),
            0x1234,
            "198.18.100.1".parse().unwrap(),
            80,
        );
        assert_eq!(key.src[..4], [198, 18, 16, 1]);
        assert_eq!(key.src[4..], [0; 12]);
        assert_eq!(key.dst[..4], [198, 18, 100, 1]);
        assert_eq!(key.ports, [0x12, 0x34, 0, 80]);
        assert_eq!((key.proto, key.pad), (6, [0; 3]));
    }

    #[test]
    fn a_directory_without_the_objects_is_refused_with_how_to_build_them() {
        let e = check_objects(std::path::Path::new("/nonexistent/katran"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("balancer.bpf.o") && e.contains("bench/katran/build.sh"),
            "{e}"
        );
    }
}
