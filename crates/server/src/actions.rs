//! Administrator actions on phones: reset, restart, apply config — sent through the protocol
//! the phone registered with (SCCP Reset message, SIP service-control NOTIFY).

use journal::ResetKind;

use crate::Shared;

/// Sends the reset of `kind` to `device` (a `SEP<MAC>` name). Returns how it was sent.
pub async fn reset(shared: &Shared, device: &str, kind: ResetKind) -> Result<String, String> {
    let regs = shared.ris.of_device(device);
    let Some(reg) = regs.first() else {
        return Err(format!("{device} is not registered on this node"));
    };
    match reg.protocol {
        journal::Protocol::Sccp => {
            let sccp = shared
                .services
                .sccp
                .as_ref()
                .ok_or("the SCCP service is not running")?;
            sccp.reset(device, kind).map_err(|e| e.to_string())?;
            Ok(format!("SCCP Reset ({kind:?})"))
        }
        journal::Protocol::Sip => {
            let sip = shared
                .services
                .sip
                .as_ref()
                .ok_or("the SIP service is not running")?;
            let action = match kind {
                ResetKind::Reset => sip::ServiceAction::Reset,
                // SIP phones re-read their configuration on restart; apply-config is a restart.
                ResetKind::Restart | ResetKind::ApplyConfig => sip::ServiceAction::Restart,
            };
            let stamps = shared
                .provisioner
                .device(device)
                .map(|d| sip::VersionStamps {
                    config: d.config_stamp.clone(),
                    ..sip::VersionStamps::default()
                })
                .unwrap_or_default();
            let results = sip
                .notifier()
                .notify_service_control_with(device, action, &stamps)
                .await
                .map_err(|e| e.to_string())?;
            let answered: Vec<String> = results
                .iter()
                .map(|r| {
                    format!(
                        "{} -> {}",
                        r.to,
                        r.status.map_or("no answer".into(), |s| s.to_string())
                    )
                })
                .collect();
            Ok(format!(
                "SIP NOTIFY service-control action={action}: {}",
                answered.join(", ")
            ))
        }
    }
}
