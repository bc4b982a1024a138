//! A user's own API keys. Every user manages its own and nobody else's;
//! another user's key does not exist for them (404).

use crate::access::OpCtx;
use crate::credentials::new_api_key;
use crate::App;
use nephele_api_types::ApiKeyCreate;
use nephele_common::error::Validator;
use nephele_common::ids::ApiKeyId;
use nephele_common::names::Name;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result, Secret};
use nephele_store::{ApiKey, NewApiKey};

impl App {
    pub async fn list_api_keys(&self, ctx: &OpCtx, page: &PageRequest) -> Result<Page<ApiKey>> {
        self.store()
            .list_api_keys(self.acting_user(ctx)?, page)
            .await
    }

    /// A new key; its secret is returned here and never again.
    pub async fn create_api_key(
        &self,
        ctx: &OpCtx,
        request: ApiKeyCreate,
    ) -> Result<(ApiKey, Secret)> {
        let mut v = Validator::new();
        let name = v.require("name", request.name, |n| Name::parse(&n));
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::internal("validated key name missing"));
        };
        let secret = new_api_key();
        let key = self
            .store()
            .create_api_key(&NewApiKey {
                id: ApiKeyId::new(),
                user_id: self.acting_user(ctx)?,
                name,
                prefix: secret.prefix,
                secret_hash: secret.hash,
                now: self.clock().now(),
            })
            .await?;
        Ok((key, secret.secret))
    }

    /// A new secret for a key; the old one stops working at once.
    pub async fn regenerate_api_key(&self, ctx: &OpCtx, id: ApiKeyId) -> Result<(ApiKey, Secret)> {
        let secret = new_api_key();
        let key = self
            .store()
            .regenerate_api_key(
                self.acting_user(ctx)?,
                id,
                &secret.prefix,
                &secret.hash,
                self.clock().now(),
            )
            .await?;
        Ok((key, secret.secret))
    }

    pub async fn delete_api_key(&self, ctx: &OpCtx, id: ApiKeyId) -> Result<()> {
        self.store()
            .delete_api_key(self.acting_user(ctx)?, id)
            .await
    }
}
