//! Screening an accepted message for viruses (ClamAV's clamd) and forbidden attachments
//! (the attachment policy) before it is delivered, and what follows from the verdict:
//!
//! * mail from the outside for hosted accounts and scan-relay domains: held in the
//!   quarantine, each recipient told with a notice and a release link (backup-MX
//!   recipients are not screened: their primary does it);
//! * mail from authenticated users and trusted networks: a virus is refused at the end of
//!   data (`554 5.7.1` naming it), so the sender's client tells the user; the attachment
//!   policy applies to it only when `attachments.outbound` says so;
//! * a scan that failed: `451 4.7.1` (try again later), or accepted with an
//!   `X-Virus-Scan: failed` header, as `antivirus.on_failure` says.

use crate::antivirus::{Action, Antivirus, FAILED_HEADER};
use crate::policy::attachments::{self, AttachmentPolicy};
use crate::smtp::{DeliveryOutcome, Envelope};

/// Where a message comes from, for what its screening may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The MX port, from a client that neither authenticated nor is trusted.
    Outside,
    /// An authenticated user or a trusted network (submission, relaying).
    Inside,
}

/// The screens, as configured.
pub struct Screens {
    pub antivirus: Antivirus,
    pub attachments: AttachmentPolicy,
    /// Whether the attachment policy also applies to mail from the inside.
    pub attachments_outbound: bool,
}

/// The verdict on one message.
#[derive(Debug)]
pub enum Screened {
    /// Deliver it (with a header added if the scan failed and the site accepts that).
    Pass(Vec<u8>),
    /// Hold it for the recipients the quarantine covers, for this reason.
    Hold { message: Vec<u8>, reason: String },
    /// Refuse it with this answer.
    Refuse(DeliveryOutcome),
}

/// Whether a recipient's copy is screened: hosted accounts and scan-relay domains from
/// the outside; everyone from the inside.
pub fn screens_recipient(origin: Origin, account: Option<u32>, scan: bool) -> bool {
    match origin {
        Origin::Outside => account.is_some() || scan,
        Origin::Inside => true,
    }
}

impl Screens {
    /// No screening at all (tests of other paths).
    pub fn off() -> Screens {
        Screens {
            antivirus: Antivirus::off(),
            attachments: AttachmentPolicy::off(),
            attachments_outbound: false,
        }
    }

    /// Screens `message` of `envelope` coming from `origin`.
    pub async fn screen(&self, envelope: &Envelope, message: Vec<u8>, origin: Origin) -> Screened {
        let id = format_args!("{:016x}", envelope.id).to_string();
        if !envelope
            .recipients
            .iter()
            .any(|r| screens_recipient(origin, r.account, r.scan))
        {
            return Screened::Pass(message);
        }
        let (scan, mut message) = match self.antivirus.scan(message).await {
            Some(done) => done,
            // The antivirus thread is gone: nothing was scanned, try again later.
            None => return Screened::Refuse(DeliveryOutcome::ScanFailed),
        };
        match scan.action(self.antivirus.on_failure()) {
            Action::Accept => {}
            Action::Infected(name) => {
                tracing::info!(id, virus = %name, ?origin, "virus found");
                return match origin {
                    Origin::Outside => Screened::Hold {
                        message,
                        reason: format!("a virus: {name}"),
                    },
                    Origin::Inside => Screened::Refuse(DeliveryOutcome::Virus(name)),
                };
            }
            Action::Tempfail => {
                tracing::warn!(id, ?scan, "virus scan failed: try again later");
                return Screened::Refuse(DeliveryOutcome::ScanFailed);
            }
            Action::AcceptTagged => {
                tracing::warn!(id, ?scan, "virus scan failed: accepted, tagged");
                let at = memchr::memmem::find(&message, b"\r\n").map_or(0, |i| i + 2);
                message.splice(at..at, FAILED_HEADER.bytes());
            }
        }
        if origin == Origin::Inside && !self.attachments_outbound {
            return Screened::Pass(message);
        }
        match attachments::check(&self.attachments, &message) {
            None => Screened::Pass(message),
            Some(held) => {
                tracing::info!(id, attachment = %held, ?origin, "forbidden attachment");
                match origin {
                    Origin::Outside => Screened::Hold {
                        message,
                        reason: held.to_string(),
                    },
                    Origin::Inside => {
                        Screened::Refuse(DeliveryOutcome::Attachment(held.to_string()))
                    }
                }
            }
        }
    }
}
