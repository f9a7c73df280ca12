//! The PoE model of a switch: IEEE classes, a total budget, per-port allocations refined by
//! CDP Power Requested / LLDP-MED Extended Power, and Cisco's request-id / management-id
//! handshake (wire reference §1.6.4 and §3).

use serde::{Deserialize, Serialize};

use crate::config::PowerAdmin;

/// Power reserved at the PSE for each IEEE class (index = class), mW.
pub const CLASS_MW: [u32; 5] = [15_400, 4_000, 7_000, 15_400, 30_000];

/// Allocation for a device of `class` (None: pre-standard/unknown, treated as class 0).
pub fn class_mw(class: Option<u8>) -> u32 {
    CLASS_MW[usize::from(class.unwrap_or(0).min(4))]
}

/// Operational state of a port, as `show power inline` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerOper {
    /// No powered device.
    Off,
    On,
    /// The budget could not cover even the class allocation.
    PowerDeny,
}

/// Power state of one port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPower {
    pub admin: PowerAdmin,
    pub oper: PowerOper,
    pub max_mw: u32,
    pub class: Option<u8>,
    pub allocated_mw: u32,
    /// Request-ID of the last Power Requested (0: none since the device appeared).
    pub request_id: u16,
    /// Management-ID, bumped on every change (never 0).
    pub management_id: u16,
    /// What the device asked for last (first non-zero level, or LLDP PD request), mW.
    pub requested_mw: Option<u32>,
    /// Platform/model of the device, for display.
    pub device: Option<String>,
}

impl PortPower {
    pub fn new(admin: PowerAdmin, max_mw: u32) -> Self {
        PortPower {
            admin,
            oper: PowerOper::Off,
            max_mw,
            class: None,
            allocated_mw: 0,
            request_id: 0,
            management_id: 1,
            requested_mw: None,
            device: None,
        }
    }

    fn bump(&mut self) {
        self.management_id = self.management_id.wrapping_add(1);
        if self.management_id == 0 {
            self.management_id = 1;
        }
    }
}

/// A change of allocation worth reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub class: Option<u8>,
    pub milliwatts: u32,
}

/// The switch's budget and its ports (indexed like the switch's interfaces).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerBudget {
    pub total_mw: u32,
    pub ports: Vec<PortPower>,
}

impl PowerBudget {
    pub fn new(total_mw: u32, ports: Vec<PortPower>) -> Self {
        PowerBudget { total_mw, ports }
    }

    pub fn used_mw(&self) -> u32 {
        self.ports.iter().map(|p| p.allocated_mw).sum()
    }

    pub fn remaining_mw(&self) -> u32 {
        self.total_mw.saturating_sub(self.used_mw())
    }

    /// A powered device appeared on `port` (detection + classification): allocate its class.
    /// Returns the grant if the allocation changed.
    pub fn device_detected(&mut self, port: usize, class: Option<u8>) -> Option<Grant> {
        let remaining = self.remaining_mw();
        let p = self.ports.get_mut(port)?;
        if p.admin == PowerAdmin::Never || p.oper == PowerOper::On {
            return None;
        }
        p.class = class;
        let want = class_mw(class).min(p.max_mw);
        if want > remaining {
            p.oper = PowerOper::PowerDeny;
            p.allocated_mw = 0;
            return None;
        }
        p.oper = PowerOper::On;
        p.allocated_mw = want;
        p.bump();
        Some(Grant {
            class,
            milliwatts: want,
        })
    }

    /// A CDP Power Requested arrived. Grants the first level (in the device's order of
    /// preference) that fits the port maximum and the budget; otherwise keeps the current
    /// allocation. Returns the new grant if the allocation changed.
    pub fn cdp_request(&mut self, port: usize, request_id: u16, levels: &[u32]) -> Option<Grant> {
        let remaining = self.remaining_mw();
        let p = self.ports.get_mut(port)?;
        if p.admin == PowerAdmin::Never || p.oper != PowerOper::On {
            return None;
        }
        let mut bump = request_id != p.request_id;
        p.request_id = request_id;
        p.requested_mw = levels.iter().copied().find(|l| *l > 0);
        let headroom = remaining + p.allocated_mw;
        let fit = levels
            .iter()
            .copied()
            .find(|l| *l > 0 && *l <= p.max_mw && *l <= headroom);
        let mut grant = None;
        if let Some(mw) = fit {
            if mw != p.allocated_mw {
                p.allocated_mw = mw;
                bump = true;
                grant = Some(Grant {
                    class: p.class,
                    milliwatts: mw,
                });
            }
        }
        if bump {
            p.bump();
        }
        grant
    }

    /// The device is gone: release its power and forget its request.
    pub fn device_gone(&mut self, port: usize) {
        if let Some(p) = self.ports.get_mut(port) {
            if p.oper != PowerOper::Off || p.allocated_mw != 0 {
                p.allocated_mw = 0;
                p.oper = PowerOper::Off;
                p.request_id = 0;
                p.requested_mw = None;
                p.device = None;
                p.class = None;
                p.bump();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total: u32, n: usize) -> PowerBudget {
        PowerBudget::new(
            total,
            (0..n)
                .map(|_| PortPower::new(PowerAdmin::Auto, 30_000))
                .collect(),
        )
    }

    #[test]
    fn class_then_cdp_refinement() {
        let mut b = budget(100_000, 2);
        assert_eq!(
            b.device_detected(0, Some(2)),
            Some(Grant {
                class: Some(2),
                milliwatts: 7_000
            })
        );
        let m0 = b.ports[0].management_id;
        // Request 6.3 W: allocation drops to it, management id bumps.
        let g = b.cdp_request(0, 23025, &[6300, 0, 0, 0, 0]).unwrap();
        assert_eq!(g.milliwatts, 6300);
        assert_eq!(b.ports[0].request_id, 23025);
        assert!(b.ports[0].management_id != m0);
        // The same request again: no change, no bump.
        let m1 = b.ports[0].management_id;
        assert_eq!(b.cdp_request(0, 23025, &[6300, 0, 0, 0, 0]), None);
        assert_eq!(b.ports[0].management_id, m1);
        assert_eq!(b.used_mw(), 6300);
        b.device_gone(0);
        assert_eq!(b.used_mw(), 0);
        assert_eq!(b.ports[0].request_id, 0);
    }

    #[test]
    fn budget_limits_grants() {
        let mut b = budget(20_000, 2);
        assert!(b.device_detected(0, Some(3)).is_some()); // 15.4 W
                                                          // 4.6 W left: class 0 (15.4 W) is denied.
        assert_eq!(b.device_detected(1, None), None);
        assert_eq!(b.ports[1].oper, PowerOper::PowerDeny);
        // Port 0 asks 25 W then 12 W: the first that fits (12 W <= 15.4 + 4.6) wins.
        let g = b.cdp_request(0, 7, &[25_000, 12_000]).unwrap();
        assert_eq!(g.milliwatts, 12_000);
        assert!(b.used_mw() <= b.total_mw);
    }

    #[test]
    fn port_max_and_never() {
        let mut b = budget(100_000, 2);
        b.ports[0].max_mw = 7_000;
        b.ports[1].admin = PowerAdmin::Never;
        assert_eq!(b.device_detected(0, Some(4)).unwrap().milliwatts, 7_000);
        assert_eq!(b.cdp_request(0, 1, &[12_000]), None);
        assert_eq!(b.ports[0].allocated_mw, 7_000);
        assert_eq!(b.device_detected(1, Some(2)), None);
        assert_eq!(b.ports[1].oper, PowerOper::Off);
    }

    #[test]
    fn management_id_never_zero() {
        let mut p = PortPower::new(PowerAdmin::Auto, 1);
        p.management_id = u16::MAX;
        p.bump();
        assert_eq!(p.management_id, 1);
    }
}
