//! DHCP with a static fallback (feature `dhcp`).
//!
//! A board on a real LAN should take the address the network gives it, but
//! must still come up on a bench with no DHCP server. So the node asks by
//! DHCP first and, when no lease has come after [`FALLBACK_AFTER`], uses
//! the static address from [`NetConfig`](crate::net::NetConfig). DHCP keeps
//! running: a lease that arrives later replaces the static address.
//!
//! The router the server offers is deliberately ignored: the services only
//! ever answer hosts on their own LAN, so the node needs no default route.

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpCidr, Ipv4Cidr};

/// How long to wait for a lease before using the static address.
pub const FALLBACK_AFTER: Duration = Duration::from_secs(5);

/// The DHCP client and the fallback timer.
pub(crate) struct Dhcp {
    handle: SocketHandle,
    /// The static address.
    fallback: Ipv4Cidr,
    /// When to give up waiting and use the static address, until then.
    fallback_at: Option<Instant>,
    /// Whether the address in use came from a lease. smoltcp reports
    /// `Deconfigured` once at start-up too; only a lost lease means a
    /// switch back to the static address.
    leased: bool,
}

impl Dhcp {
    /// Adds the DHCP socket; the interface stays unaddressed until a lease
    /// or the fallback.
    pub(crate) fn new(sockets: &mut SocketSet<'_>, fallback: Ipv4Cidr, now: Instant) -> Self {
        let handle = sockets.add(dhcpv4::Socket::new());
        Dhcp {
            handle,
            fallback,
            fallback_at: Some(now + FALLBACK_AFTER),
            leased: false,
        }
    }

    /// Applies lease changes and the fallback. Returns whether the address
    /// changed.
    pub(crate) fn poll(
        &mut self,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
        now: Instant,
    ) -> bool {
        let event = sockets.get_mut::<dhcpv4::Socket>(self.handle).poll();
        match event {
            Some(dhcpv4::Event::Configured(lease)) => {
                info!("dhcp: leased {}", lease.address);
                set_address(iface, lease.address);
                self.fallback_at = None;
                self.leased = true;
                true
            }
            Some(dhcpv4::Event::Deconfigured) if self.leased => {
                self.leased = false;
                warn!("dhcp: lease lost, using static {}", self.fallback);
                set_address(iface, self.fallback);
                true
            }
            _ => match self.fallback_at {
                Some(at) if now >= at => {
                    warn!("dhcp: no lease after 5 s, using static {}", self.fallback);
                    set_address(iface, self.fallback);
                    self.fallback_at = None;
                    true
                }
                _ => false,
            },
        }
    }

    /// When the fallback fires, if it has not yet.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.fallback_at
    }
}

fn set_address(iface: &mut Interface, cidr: Ipv4Cidr) {
    iface.update_ip_addrs(|addrs| {
        addrs.clear();
        // The list was just emptied, so one address fits.
        let _ = addrs.push(IpCidr::Ipv4(cidr));
    });
}
