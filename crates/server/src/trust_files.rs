//! The file service's view of trust files: `*.tlv` and `*.sgn` from
//! [`provision::trust::TrustFiles`], everything else from the provisioner.

use std::sync::Arc;

use provision::trust::TrustFiles;

use crate::adapters::ProvisionedFiles;

pub struct TrustedFiles {
    pub files: ProvisionedFiles,
    pub trust: Arc<TrustFiles>,
}

impl fileserver::FileSource for TrustedFiles {
    fn get(&self, name: &str) -> Option<Arc<fileserver::File>> {
        let n = name.len();
        let ext = name.get(n.saturating_sub(4)..).unwrap_or("");
        if ext.eq_ignore_ascii_case(".tlv") || ext.eq_ignore_ascii_case(".sgn") {
            // Tagged by content: a rotation changes a signed file without changing the
            // version of the file it signs.
            return self
                .trust
                .get(name)
                .map(|f| Arc::new(fileserver::File::new(f.bytes, f.modified)));
        }
        self.files.get(name)
    }
}
