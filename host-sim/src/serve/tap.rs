//! Opening the Linux TAP interface the device runs on.
//!
//! `TUNSETIFF` attaches to an existing TAP interface, or creates one when we
//! have `CAP_NET_ADMIN`. An interface we create is not persistent: the
//! kernel deletes it when `serve` exits, so a restarted `serve` creates and
//! configures it again. Without the privilege, the user creates a
//! persistent TAP once with `ip tuntap add ... user $USER`, and `serve`
//! then runs without root.
//!
//! Frames then move through [`TapDevice`], not `TunTapInterface` itself
//! (see [`super::tap_device`] for why).

use std::error::Error;
use std::fs;
use std::io;
use std::process::Command;

use smoltcp::phy::{Device, Medium, TunTapInterface};

use super::tap_device::TapDevice;
use smoltcp::wire::Ipv4Cidr;

/// Linux interface names are shorter than `IFNAMSIZ` (16) bytes.
const MAX_NAME: usize = 15;

/// A new TAP interface's MTU.
const DEFAULT_MTU: usize = 1500;

/// What a frame adds to the interface's (IP) MTU.
const ETHERNET_HEADER: usize = 14;

/// Opens (or creates and configures) the TAP interface `name`. `host_ip`
/// is the host side's address, given to an interface we create. `mtu`, if
/// given, is set on the interface (the host's end of the link) and used by
/// the device (its end): both ends of a link must agree.
pub fn open(
    name: &str,
    host_ip: Ipv4Cidr,
    mtu: Option<usize>,
) -> Result<TapDevice, Box<dyn Error>> {
    check_name(name)?;
    let existed = fs::metadata(format!("/sys/class/net/{name}")).is_ok();
    let attached = TunTapInterface::new(name, Medium::Ethernet)
        .map_err(|e| explain(name, host_ip, existed, e))?;
    if let Some(mtu) = mtu
        && interface_mtu(name) != Some(mtu)
    {
        ip(&["link", "set", "dev", name, "mtu", &mtu.to_string()]).map_err(|e| {
            format!(
                "{e}\n--mtu {mtu} must be set on {name} too; as root: sudo ip link set dev {name} mtu {mtu}"
            )
        })?;
    }
    // What the interface says now, so a TAP configured by hand is used as
    // it is; smoltcp's own figure was read before `--mtu` was applied.
    let ip_mtu = interface_mtu(name)
        .unwrap_or(attached.capabilities().max_transmission_unit - ETHERNET_HEADER);
    let device = TapDevice::new(attached, name, ip_mtu)
        .map_err(|e| format!("cannot use TAP interface {name}: {e}"))?;
    if ip_mtu != DEFAULT_MTU {
        log::info!("{name}: MTU {ip_mtu}, on the host's side and the device's");
    }
    if existed {
        log::info!("attached to the existing TAP interface {name}");
        if !is_up(name) {
            log::warn!(
                "{name} is down: the host cannot reach the device until you run: sudo ip link set {name} up"
            );
        }
    } else {
        configure(name, host_ip)?;
        log::info!(
            "created TAP interface {name}, host side {host_ip}; it goes away when serve stops"
        );
    }
    Ok(device)
}

/// Rejects names the kernel would refuse (smoltcp would panic on a long one).
fn check_name(name: &str) -> Result<(), String> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(format!(
            "invalid interface name {name:?}: use 1 to {MAX_NAME} bytes without '/', ':' or spaces, e.g. tap0"
        ));
    }
    Ok(())
}

/// Turns an error from `TUNSETIFF` into what to do about it.
fn explain(name: &str, host_ip: Ipv4Cidr, existed: bool, e: io::Error) -> Box<dyn Error> {
    let msg = match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) if existed => format!(
            "cannot open TAP interface {name}: permission denied. It belongs to another user; recreate it for yours:\n\
             \x20   sudo ip tuntap del name {name} mode tap\n{}",
            setup_commands(name, host_ip)
        ),
        Some(libc::EPERM | libc::EACCES) => format!(
            "cannot create TAP interface {name}: permission denied. Create it once for your user, \
             then run serve again without sudo:\n{}",
            setup_commands(name, host_ip)
        ),
        Some(libc::ENOENT | libc::ENODEV) => {
            "/dev/net/tun is missing: load the TUN/TAP driver with `sudo modprobe tun`".to_owned()
        }
        Some(libc::EINVAL) => {
            format!("{name} exists but is not a TAP interface: choose another --tap")
        }
        Some(libc::EBUSY) => {
            format!("{name} is in use by another program (is another `host-sim serve` running?)")
        }
        _ => format!("cannot open TAP interface {name}: {e}"),
    };
    msg.into()
}

/// The commands that create a TAP interface a normal user can open.
fn setup_commands(name: &str, host_ip: Ipv4Cidr) -> String {
    format!(
        "    sudo ip tuntap add name {name} mode tap user $USER\n\
         \x20   sudo ip link set {name} up\n\
         \x20   sudo ip addr add {host_ip} dev {name}"
    )
}

/// Gives an interface we just created its host address and brings it up.
fn configure(name: &str, host_ip: Ipv4Cidr) -> Result<(), String> {
    let addr = host_ip.to_string();
    match ip(&["addr", "add", &addr, "dev", name]) {
        // Already there (a second address add fails with "File exists").
        Err(e) if e.contains("File exists") => {}
        r => r?,
    }
    ip(&["link", "set", name, "up"])
}

/// Runs `ip ARGS`; the error is what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let shown = args.join(" ");
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip {shown}`: {e} (is iproute2 installed?)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {shown}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The interface's MTU, as the kernel has it.
fn interface_mtu(name: &str) -> Option<usize> {
    let mtu = fs::read_to_string(format!("/sys/class/net/{name}/mtu")).ok()?;
    mtu.trim().parse().ok()
}

/// Whether the interface is administratively up (`IFF_UP` in its flags).
fn is_up(name: &str) -> bool {
    let flags = fs::read_to_string(format!("/sys/class/net/{name}/flags")).unwrap_or_default();
    let flags = flags.trim().trim_start_matches("0x");
    u32::from_str_radix(flags, 16).is_ok_and(|f| f & libc::IFF_UP as u32 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_refuses_are_rejected_before_smoltcp_sees_them() {
        for bad in ["", ".", "..", "a/b", "a b", "tap:0", "0123456789abcdef"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["tap0", "smt-tap", "0123456789abcde"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn permission_error_prints_the_setup_commands() {
        let ip = "192.168.69.100/24".parse().expect("cidr");
        let e = explain("tap7", ip, false, io::Error::from_raw_os_error(libc::EPERM)).to_string();
        assert!(
            e.contains("sudo ip tuntap add name tap7 mode tap user $USER"),
            "{e}"
        );
        assert!(e.contains("sudo ip link set tap7 up"), "{e}");
        assert!(
            e.contains("sudo ip addr add 192.168.69.100/24 dev tap7"),
            "{e}"
        );
    }
}
