//! The ACME account: one per directory (each CA of a fallback list has its own), created
//! once, stored (0600 under `STATE/acme/<directory>/account.json`, sealed in Redis), reused,
//! set aside when unusable; never replaced when the store is down or the key wrong. The
//! location depends only on the directory URL, so the account an install made with the single
//! `directory` form is the one used when that directory heads an `[[acme.ca]]` list.

use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};
use vigie_config::{Acme, Eab, EabKey};

use crate::store::StoreError;

use super::*;

impl Manager {
    /// Move the stored credentials aside (kept for the operator, never deleted).
    pub(super) async fn set_aside_account(&self, acme: &Acme) -> String {
        match self.store.set_aside_account(&acme.directory).await {
            Ok(aside) => aside,
            Err(e) => e.to_string(),
        }
    }

    pub(super) async fn account(
        &self,
        state: &mut State,
        acme: &Acme,
    ) -> Result<Account, AcmeError> {
        if let Some(account) = state.accounts.get(&acme.directory) {
            return Ok(account.clone());
        }
        let path = self.store.account_location(&acme.directory);
        let builder = || -> Result<_, AcmeError> {
            let client = super::http::CaClient::new(
                acme.ca_roots.as_deref(),
                self.traffic.clone(),
                self.timeout,
            )?;
            Ok(Account::builder_with_http(Box::new(client)))
        };
        let stored = match self.store.load_account(&acme.directory).await {
            Ok(stored) => stored.map(|b| {
                serde_json::from_slice::<AccountCredentials>(&b).map_err(|e| e.to_string())
            }),
            Err(StoreError::Corrupt(e)) => Some(Err(e)),
            // Unreachable, or sealed with another key: never replaced by a new account.
            Err(e) => return Err(AcmeError::Storage(format!("{path}: {e}"))),
        };
        match stored {
            Some(Ok(creds)) => {
                let account = builder()?.from_credentials(creds).await?;
                tracing::info!(path = %path, "reusing the ACME account");
                state
                    .accounts
                    .insert(acme.directory.clone(), account.clone());
                return Ok(account);
            }
            Some(Err(e)) => {
                let aside = self.set_aside_account(acme).await;
                tracing::error!(path = %path, error = %e, aside = %aside,
                    "ACME account credentials are unreadable: set aside, creating a new account");
            }
            None => {}
        }
        let contact = acme.email.as_ref().map(|e| format!("mailto:{e}"));
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let eab = acme.eab.as_ref().map(eab_key).transpose()?;
        let created = builder()?
            .create(
                &NewAccount {
                    contact: &contacts,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                acme.directory.clone(),
                eab.as_ref(),
            )
            .await;
        let (account, creds) = match (created, &acme.eab) {
            (Ok(c), _) => c,
            // The CA's refusal of a binding names neither the kid nor the directory: say both.
            (Err(instant_acme::Error::Api(p)), Some(eab))
                if !p
                    .r#type
                    .as_deref()
                    .is_some_and(|t| t.ends_with(":rateLimited")) =>
            {
                return Err(AcmeError::Eab(format!(
                    "{} refused the account with EAB kid \"{}\" (check the kid and the HMAC \
                     key the CA gave): {p}",
                    acme.directory, eab.kid
                )));
            }
            (Err(e), _) => return Err(e.into()),
        };
        let json =
            serde_json::to_vec_pretty(&creds).map_err(|e| AcmeError::Storage(e.to_string()))?;
        self.store
            .save_account(&acme.directory, &json)
            .await
            .map_err(|e| AcmeError::Storage(e.to_string()))?;
        tracing::info!(path = %path, directory = %acme.directory,
            eab = acme.eab.is_some(), "created an ACME account");
        state
            .accounts
            .insert(acme.directory.clone(), account.clone());
        Ok(account)
    }
}

/// The EAB key, read from where the configuration says (a file or a variable is read only
/// now, when an account is registered).
fn eab_key(eab: &Eab) -> Result<ExternalAccountKey, AcmeError> {
    let (text, what) = match &eab.hmac_key {
        EabKey::Inline(k) => (k.clone(), "eab hmac_key".to_string()),
        EabKey::File(p) => {
            let what = format!("eab hmac_key_file {}", p.display());
            let text = std::fs::read_to_string(p)
                .map_err(|e| AcmeError::Eab(format!("{what}: cannot read: {e}")))?;
            (text, what)
        }
        EabKey::Env(v) => {
            let what = format!("eab hmac_key_env {v}");
            let text = std::env::var(v).map_err(|e| AcmeError::Eab(format!("{what}: {e}")))?;
            (text, what)
        }
    };
    use base64::Engine;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim().trim_end_matches('='))
        .map_err(|e| AcmeError::Eab(format!("{what} is not a base64url key: {e}")))?;
    if key.is_empty() {
        return Err(AcmeError::Eab(format!("{what} is empty")));
    }
    Ok(ExternalAccountKey::new(eab.kid.clone(), &key))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn eab_keys_come_from_files_and_variables_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("eab.key");
        std::fs::write(&file, "zWNDZM6eQGHWpSRTPal5eIUY\n").unwrap();
        let eab = |k| Eab {
            kid: "kid".into(),
            hmac_key: k,
        };
        assert!(eab_key(&eab(EabKey::File(file.clone()))).is_ok());
        assert!(eab_key(&eab(EabKey::Inline("zWNDZM6eQGHWpSRTPal5eIUY".into()))).is_ok());
        let missing = dir.path().join("nope.key");
        let e = eab_key(&eab(EabKey::File(missing.clone()))).err().unwrap();
        assert!(
            e.to_string().starts_with(&format!(
                "external account binding: eab hmac_key_file {}: cannot read: ",
                missing.display()
            )),
            "{e}"
        );
        std::fs::write(&file, "not base64!").unwrap();
        let e = eab_key(&eab(EabKey::File(file.clone()))).err().unwrap();
        assert!(e.to_string().contains("is not a base64url key"), "{e}");
        let e = eab_key(&eab(EabKey::Env("VIGIE_TEST_NO_SUCH_VARIABLE".into())))
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .contains("eab hmac_key_env VIGIE_TEST_NO_SUCH_VARIABLE"),
            "{e}"
        );
    }
}
