//! An overlay on this host: the bridge (as for a bridge network) plus a VXLAN device on it
//! with the network's VNI, this host's VTEP as source, UDP 4789, learning off and proxy ARP
//! on (ARP is answered from the neighbour entries the agent programs), MTU = underlay - 50.

use crate::error::KernelContext;
use crate::{Error, Paths, Result};
use berth_kernel::netlink::{Netlink, VXLAN_PORT};
use berth_store::Network;
use std::net::{IpAddr, Ipv4Addr};

/// Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers.
pub(crate) const VXLAN_OVERHEAD: u32 = 50;

/// The bridge of an overlay network on every host.
pub(crate) fn bridge_name(network_id: &str) -> String {
    format!("ov-{}", &network_id[..12])
}

/// The VXLAN device of an overlay network on every host.
pub fn vxlan_name(network_id: &str) -> String {
    format!("vx-{}", &network_id[..12])
}

/// What the VXLAN device of a network looks like on this host.
#[derive(Clone, Debug)]
pub(crate) struct Vxlan {
    pub(crate) name: String,
    pub(crate) vni: u32,
    pub(crate) local: Ipv4Addr,
    pub(crate) mtu: u32,
}

impl Vxlan {
    /// The bridge's MAC on this host: from the VTEP, so that no two hosts' bridges share
    /// one (their gateways share the address).
    pub(crate) fn bridge_mac(&self) -> [u8; 6] {
        let o = self.local.octets();
        [0x02, 0x62, o[0], o[1], o[2], o[3]]
    }
}

/// The VXLAN device an overlay network needs here; `None` for other drivers.
pub(crate) fn spec(paths: &Paths, net: &Network) -> Result<Option<Vxlan>> {
    if net.driver != "overlay" {
        return Ok(None);
    }
    let cfg = paths.cluster.as_ref().ok_or_else(|| {
        Error::Invalid(format!(
            "network {} is an overlay: give --store (or set it in the config file) to use it",
            net.name
        ))
    })?;
    Ok(Some(Vxlan {
        name: vxlan_name(&net.id),
        vni: super::vni(net)?,
        local: cfg.vtep()?,
        mtu: net.mtu.unwrap_or(1500 - VXLAN_OVERHEAD),
    }))
}

/// The MTU of the interface that holds this host's VTEP address.
pub(crate) fn underlay_mtu(engine: &crate::Engine) -> Result<u32> {
    let Some(cfg) = engine.paths.cluster.as_ref() else {
        return Ok(1500);
    };
    let vtep = IpAddr::V4(cfg.vtep()?);
    let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
    let addr = nl
        .addresses()
        .op(|| "list addresses".into())?
        .into_iter()
        .find(|a| a.addr == vtep)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "advertise address {vtep} is not an address of this host: give --advertise with one"
            ))
        })?;
    Ok(nl
        .link_by_index(addr.index)
        .op(|| format!("look up the link of {vtep}"))?
        .map_or(1500, |l| l.mtu))
}

/// Makes the VXLAN device exist, enslaved to `bridge` and up.
pub(crate) fn ensure(nl: &mut Netlink, vx: &Vxlan, bridge: u32) -> Result<()> {
    let index = match nl
        .link_by_name(&vx.name)
        .op(|| format!("look up {}", vx.name))?
    {
        Some(l) if l.kind.as_deref() == Some("vxlan") => l.index,
        Some(_) => {
            return Err(Error::Conflict(format!(
                "interface {} exists but is not a VXLAN device: remove it",
                vx.name
            )))
        }
        None => nl
            .create_vxlan(&vx.name, vx.vni, vx.local, VXLAN_PORT, vx.mtu)
            .op(|| format!("create VXLAN device {} (VNI {})", vx.name, vx.vni))?,
    };
    nl.set_master(index, bridge)
        .op(|| format!("attach {} to its bridge", vx.name))?;
    nl.set_up(index).op(|| format!("bring {} up", vx.name))?;
    Ok(())
}

/// Deletes the VXLAN device of a network; absent is fine. Returns a failure, if any.
pub(crate) fn remove(nl: &mut Netlink, net: &Network) -> Option<String> {
    if net.driver != "overlay" {
        return None;
    }
    let name = vxlan_name(&net.id);
    match nl.delete_link_by_name(&name) {
        Ok(_) => None,
        Err(e) => Some(format!("delete VXLAN device {name}: {e}")),
    }
}
