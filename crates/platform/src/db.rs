//! PostgreSQL: one pool per process, one schema per service, migrations embedded and applied at
//! start.
//!
//! Each service owns a schema named after it (`intake`, `routing`, `sla_monitor`, …) and never
//! reads another's: what it needs from others it learns from events. The pool sets
//! `search_path` to the service's schema, so SQL in the services names bare tables.
//!
//! Two migration sets run at start, each with its own bookkeeping table in the schema: the
//! platform's (outbox, processed events, dead letters) and then the service's own.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgPool};

/// The platform's own tables, present in every service schema.
static PLATFORM_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Why the database could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid database URL: {0}")]
    Url(sqlx::Error),
    #[error("invalid schema name {0:?}: use lowercase letters, digits and '_'")]
    Schema(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Connect(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
}

/// Opens the service's pool, creating the database (optionally) and the schema, and applies
/// the platform's and the service's migrations.
pub async fn connect(
    url: &str,
    schema: &str,
    max_connections: u32,
    create_database: bool,
    service_migrations: &Migrator,
) -> Result<PgPool, Error> {
    if schema.is_empty()
        || !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(Error::Schema(schema.to_owned()));
    }
    let options = PgConnectOptions::from_str(url).map_err(Error::Url)?;
    if create_database {
        ensure_database(&options).await?;
    }
    // The schema must exist before a pooled connection can use it as its search_path.
    let mut conn = options.connect().await.map_err(Error::Connect)?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
    )))
    .await
    .or_else(ignore_duplicate)?;
    conn.close().await.ok();

    let pool = PgPoolOptions::new()
        .max_connections(max_connections.max(2))
        .acquire_timeout(Duration::from_secs(10))
        // JIT off: every statement here is a short keyed read or write, or one batch of them,
        // and compiling one costs tens of milliseconds. On tables not yet analysed (a new
        // install, or a server with autovacuum off) the planner's default estimates priced
        // routing's small read of its rules above `jit_above_cost`, and every batch paid
        // ~20 ms of compilation for a query that runs in microseconds.
        // Named after the schema, so `pg_stat_activity` shows which service a backend serves.
        .connect_with(
            options
                .application_name(&format!("redress-{schema}"))
                .options([("search_path", schema), ("jit", "off")]),
        )
        .await
        .map_err(Error::Connect)?;

    let mut platform = Migrator {
        migrations: PLATFORM_MIGRATIONS.migrations.clone(),
        ..Migrator::DEFAULT
    };
    platform.dangerous_set_table_name("_redress_platform_migrations");
    platform.run(&pool).await?;
    service_migrations.run(&pool).await?;
    Ok(pool)
}

/// `CREATE SCHEMA IF NOT EXISTS` can still fail with a unique violation when two replicas
/// race; the schema exists either way.
fn ignore_duplicate(e: sqlx::Error) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => Ok(Default::default()),
        _ => Err(e),
    }
}

async fn ensure_database(options: &PgConnectOptions) -> Result<(), Error> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let admin = options.clone().database("postgres");
    let mut conn = admin.connect().await.map_err(Error::Connect)?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await?;
    if exists.is_none() {
        let q = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        if let Err(e) = conn.execute(sqlx::AssertSqlSafe(q)).await {
            // 42P04 duplicate_database: another service created it meanwhile.
            let dup = matches!(&e, sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("42P04") | Some("23505")));
            if !dup {
                return Err(e.into());
            }
        }
    }
    conn.close().await.ok();
    Ok(())
}
