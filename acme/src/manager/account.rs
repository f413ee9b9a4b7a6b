//! The ACME account: created once per directory, stored (0600 on disk, sealed in Redis),
//! reused, set aside when unusable; never replaced when the store is down or the key wrong.

use instant_acme::{Account, AccountCredentials, ExternalAccountKey, NewAccount};
use vigie_config::Acme;

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
        if let Some((dir, account)) = &state.account {
            if *dir == acme.directory {
                return Ok(account.clone());
            }
        }
        let path = self.store.account_location(&acme.directory);
        let builder = || -> Result<_, AcmeError> {
            let client =
                super::http::CaClient::new(acme.ca_roots.as_deref(), self.traffic.clone())?;
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
                state.account = Some((acme.directory.clone(), account.clone()));
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
        self.store
            .save_account(&acme.directory, &json)
            .await
            .map_err(|e| AcmeError::Storage(e.to_string()))?;
        tracing::info!(path = %path, "created an ACME account");
        state.account = Some((acme.directory.clone(), account.clone()));
        Ok(account)
    }
}
