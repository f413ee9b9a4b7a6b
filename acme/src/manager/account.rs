//! The ACME account: created once per directory, stored 0600, reused, set aside when unusable.

use std::path::PathBuf;
use std::time::SystemTime;

use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};
use vigie_config::Acme;

use crate::store::{private_dir, write_atomic};

use super::*;

impl Manager {
    pub(super) fn account_path(&self, acme: &Acme) -> PathBuf {
        self.state_dir
            .join("acme")
            .join(directory_key(&acme.directory))
            .join("account.json")
    }

    /// Move the stored credentials aside (kept for the operator, never deleted).
    pub(super) fn set_aside_account(&self, acme: &Acme) -> PathBuf {
        let path = self.account_path(acme);
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = path.with_file_name(format!("account.json.old-{stamp}"));
        let _ = std::fs::rename(&path, &aside);
        aside
    }

    pub(super) async fn account(
        &self,
        state: &mut State,
        acme: &Acme,
    ) -> Result<Account, AcmeError> {
        if let Some((dir, account)) = &state.account {
            if *dir == acme.directory {
                return Ok(account.clone());
            }
        }
        let dir = self
            .state_dir
            .join("acme")
            .join(directory_key(&acme.directory));
        let path = dir.join("account.json");
        let builder = || -> Result<_, AcmeError> {
            let client =
                super::http::CaClient::new(acme.ca_roots.as_deref(), self.traffic.clone())?;
            Ok(Account::builder_with_http(Box::new(client)))
        };
        if path.exists() {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| {
                    serde_json::from_slice::<AccountCredentials>(&b).map_err(|e| e.to_string())
                });
            match parsed {
                Ok(creds) => {
                    let account = builder()?.from_credentials(creds).await?;
                    tracing::info!(path = %path.display(), "reusing the ACME account");
                    state.account = Some((acme.directory.clone(), account.clone()));
                    return Ok(account);
                }
                Err(e) => {
                    let aside = self.set_aside_account(acme);
                    tracing::error!(path = %path.display(), error = %e, aside = %aside.display(),
                        "ACME account credentials are unreadable: set aside, creating a new account");
                }
            }
        }
        let contact = acme.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = match &acme.eab {
            Some(eab) => {
                use base64::Engine;
                let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(eab.hmac_key.trim_end_matches('='))
                    .map_err(|e| {
                        AcmeError::Storage(format!("eab hmac_key is not base64url: {e}"))
                    })?;
                Some(ExternalAccountKey::new(eab.kid.clone(), &key))
            }
            None => None,
        };
        let (account, creds) = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                acme.directory.clone(),
                eab.as_ref(),
            )
            .await?;
        let json =
            serde_json::to_vec_pretty(&creds).map_err(|e| AcmeError::Storage(e.to_string()))?;
        private_dir(&dir).map_err(|e| AcmeError::Storage(format!("{}: {e}", dir.display())))?;
        write_atomic(&path, &json, true)
            .map_err(|e| AcmeError::Storage(format!("{}: {e}", path.display())))?;
        tracing::info!(path = %path.display(), "created an ACME account");
        state.account = Some((acme.directory.clone(), account.clone()));
        Ok(account)
    }
}
