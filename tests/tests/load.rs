//! The embedded object loads into the kernel with every map and both programs.

use aya::{EbpfLoader, programs::Xdp};

#[test]
fn object_loads_and_verifies() {
    let mask = lb_common::flow_table::user::conntrack_mask(1024);
    let mut loader = EbpfLoader::new();
    lb_common::flow_table::user::size_conntrack(&mut loader, &mask);
    let mut ebpf = loader
        .load(lb::object::EBPF_OBJECT)
        .expect("load eBPF object");
    for name in lb::kernel::MAP_NAMES {
        assert!(ebpf.map(name).is_some(), "map {name} missing");
    }
    for name in [lb_common::PROG_LB, lb_common::PROG_DECAP] {
        let prog: &mut Xdp = ebpf.program_mut(name).expect(name).try_into().unwrap();
        prog.load()
            .unwrap_or_else(|e| panic!("verifier rejected {name}: {e:?}"));
    }
}
