//! With feature `dhcp`, a node on a LAN without a DHCP server comes up on
//! its static address once the fallback time has passed.

use smoltalk::Config;
use smoltalk::net::HostMemory;
use smoltalk::sim::World;
use smoltcp::time::Duration;

#[test]
fn no_dhcp_server_means_static_address_after_the_fallback() {
    let config = Config::HOST;
    let mut mem = HostMemory::new(&config);
    let mut w = World::new(&config, &mut mem, 40).unwrap();
    let c = w.add_client();
    w.run_for(Duration::from_secs(1));
    assert!(w.hub().stats().frames > 0, "the node asked for a lease");
    assert!(
        w.server().iface_mut().ip_addrs().is_empty(),
        "no address while it waits"
    );
    let conn = w.connect(c, 7).unwrap();
    assert!(
        w.now().total_millis() >= 5000,
        "served only after the fallback"
    );
    assert_eq!(
        w.echo_exchange(conn, b"static", Duration::from_secs(1))
            .unwrap(),
        b"static"
    );
}
