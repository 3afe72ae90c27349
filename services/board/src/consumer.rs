//! The projection: every event folded into the board's tables ([`crate::fold`] decides what
//! changes, [`crate::store`] writes it). The platform's consumer skips a message it has
//! processed; the writes are upserts that set only what the event knows, so a replay of the
//! whole stream rebuilds the same board.

use redress_platform::consumer::{HandleError, Handler, Incoming};
use sqlx::PgConnection;

use crate::error::Error;
use crate::{fold, store};

pub struct Projection;

#[async_trait::async_trait]
impl Handler for Projection {
    async fn handle(&self, conn: &mut PgConnection, msg: &Incoming<'_>) -> Result<(), HandleError> {
        let event = msg.event()?;
        store::apply(conn, &fold::fold(event))
            .await
            .map_err(|e| HandleError::from(Error::from(e)))
    }
}
