//! The metadata database: one SQLite file, `meta.db`.
//!
//! The daemon is its only writer. Every change that must be all-or-nothing
//! (an image with its tags and the references between its blobs, say) is
//! one transaction through [`Db::write`].
//!
//! # Schema
//!
//! The version is SQLite's `user_version`; [`MIGRATIONS`]`[n]` takes the
//! database from version `n` to `n + 1`. A database newer than this build
//! is refused rather than misread. Version 1:
//!
//! | table | row | key |
//! |---|---|---|
//! | `images` | an image: its ID (the config digest), the manifest or index it came from, when it was stored and last tagged, the chain ID of its unpacked layers | `id` |
//! | `tags` | a `repository:tag` (fully qualified) naming an image | `name` |
//! | `repo_digests` | a `repository@digest` an image is known by | `name` |
//! | `content_refs` | blob `parent` refers to blob `child` (manifest → config, layers) | `parent, child` |
//! | `layers` | a layer blob, the digest and size of its uncompressed tar (`diff_id`, `diff_size`) | `blob` |
//! | `snapshots` | a snapshot: its directory number, parent, kind (`committed`, `active`, `view`), size, labels | `key` |
//! | `leases` | an operation that holds content, snapshots or ingests while it works | `id` |
//! | `lease_resources` | what a lease holds: `kind` is `content`, `snapshot` or `ingest` | `lease, kind, key` |
//!
//! Times are nanoseconds since the Unix epoch.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use hafen_oci::Digest;
use rusqlite::{Connection, OptionalExtension, params};

/// The migrations, in order; the schema version is their count.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1
    "
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        target_digest TEXT NOT NULL,
        target_media_type TEXT NOT NULL,
        target_size INTEGER NOT NULL,
        created INTEGER NOT NULL,
        last_tag_time INTEGER,
        chain_id TEXT,
        parent TEXT
    );
    CREATE TABLE tags (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX tags_by_image ON tags(image_id);
    CREATE TABLE repo_digests (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
    );
    CREATE INDEX repo_digests_by_image ON repo_digests(image_id);
    CREATE TABLE content_refs (
        parent TEXT NOT NULL,
        child TEXT NOT NULL,
        PRIMARY KEY (parent, child)
    ) WITHOUT ROWID;
    CREATE TABLE layers (
        blob TEXT PRIMARY KEY,
        diff_id TEXT NOT NULL,
        media_type TEXT NOT NULL,
        diff_size INTEGER NOT NULL
    );
    CREATE INDEX layers_by_diff_id ON layers(diff_id);
    CREATE TABLE snapshots (
        key TEXT PRIMARY KEY,
        id INTEGER NOT NULL UNIQUE,
        parent TEXT REFERENCES snapshots(key),
        kind TEXT NOT NULL,
        created INTEGER NOT NULL,
        size INTEGER,
        labels TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE leases (
        id TEXT PRIMARY KEY,
        created INTEGER NOT NULL
    );
    CREATE TABLE lease_resources (
        lease TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        PRIMARY KEY (lease, kind, key)
    ) WITHOUT ROWID;
    ",
];

/// Database failures.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite reported an error.
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file was written by a newer hafen.
    #[error(
        "metadata database schema version {found} is newer than this hafen understands ({known}): upgrade hafen"
    )]
    TooNew {
        /// The file's version.
        found: usize,
        /// This build's version.
        known: usize,
    },
    /// A stored value that does not parse (the file was edited or damaged).
    #[error("metadata database: bad value {value:?} in {table}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The value.
        value: String,
    },
}

type Result<T, E = DbError> = std::result::Result<T, E>;

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    to_nanos(SystemTime::now())
}

/// A time as nanoseconds since the Unix epoch.
pub fn to_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The metadata database.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        let mut conn = Connection::open(path)?;
        // WAL: readers never block the writer; a crash loses at most the
        // transaction being written, never consistency.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        Ok(Db {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` in one transaction: all of its changes or none.
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(DbError::from)?;
        let out = f(&Tx(&tx))?;
        tx.commit().map_err(DbError::from)?;
        Ok(out)
    }

    /// Runs `f` on a consistent view (a transaction that is not committed).
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction().map_err(DbError::from)?;
        f(&Tx(&tx))
    }

    /// The schema version of the open database.
    pub fn version(&self) -> Result<usize> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        schema_version(&conn)
    }
}

fn schema_version(conn: &Connection) -> Result<usize> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(usize::try_from(v).unwrap_or(0))
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let found = schema_version(conn)?;
    if found > MIGRATIONS.len() {
        return Err(DbError::TooNew {
            found,
            known: MIGRATIONS.len(),
        });
    }
    for (n, sql) in MIGRATIONS.iter().enumerate().skip(found) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", n + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// An image record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The image ID: the digest of its config.
    pub id: Digest,
    /// The manifest (or index) it came from.
    pub target: Target,
    /// When it was stored (ns).
    pub created: i64,
    /// When it was last tagged (ns).
    pub last_tag_time: Option<i64>,
    /// The chain ID of its unpacked layers (the top snapshot's key).
    pub chain_id: Option<String>,
    /// The image it was built from, if known.
    pub parent: Option<Digest>,
}

/// A descriptor of the manifest or index an image came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
}

/// A layer blob and what it holds uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRecord {
    /// The blob (as stored, maybe compressed).
    pub blob: Digest,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The blob's media type.
    pub media_type: String,
    /// The size of the uncompressed tar.
    pub diff_size: u64,
}

/// A snapshot record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// Its key (for committed layers: the chain ID).
    pub key: String,
    /// The number of its directory.
    pub id: i64,
    /// Its parent's key.
    pub parent: Option<String>,
    /// `committed`, `active` or `view`.
    pub kind: String,
    /// When it was made (ns).
    pub created: i64,
    /// Bytes of its own files (committed snapshots).
    pub size: Option<u64>,
    /// Labels, as a JSON object.
    pub labels: String,
}

/// What a lease can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A blob (key: digest).
    Content,
    /// A snapshot (key: snapshot key).
    Snapshot,
    /// An ingest (key: ingest ref).
    Ingest,
}

impl Resource {
    fn name(self) -> &'static str {
        match self {
            Resource::Content => "content",
            Resource::Snapshot => "snapshot",
            Resource::Ingest => "ingest",
        }
    }
}

fn digest_col(table: &'static str, text: String) -> Result<Digest> {
    Digest::parse(&text).map_err(|_| DbError::Corrupt { table, value: text })
}

fn as_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A transaction, with typed operations on the schema.
#[derive(Debug)]
pub struct Tx<'a>(&'a rusqlite::Transaction<'a>);

impl Tx<'_> {
    // ---- images

    /// Adds or replaces an image.
    pub fn put_image(&self, image: &ImageRecord) -> Result<()> {
        self.0.execute(
            "INSERT INTO images (id, target_digest, target_media_type, target_size, created, last_tag_time, chain_id, parent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET target_digest = ?2, target_media_type = ?3, target_size = ?4,
                 chain_id = COALESCE(?7, chain_id), parent = COALESCE(?8, parent)",
            params![
                image.id.to_string(),
                image.target.digest.to_string(),
                image.target.media_type,
                as_i64(image.target.size),
                image.created,
                image.last_tag_time,
                image.chain_id,
                image.parent.as_ref().map(Digest::to_string),
            ],
        )?;
        Ok(())
    }

    fn images_where(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ImageRecord>> {
        struct Raw {
            id: String,
            target: String,
            media_type: String,
            size: i64,
            created: i64,
            last_tag_time: Option<i64>,
            chain_id: Option<String>,
            parent: Option<String>,
        }
        let sql = format!(
            "SELECT id, target_digest, target_media_type, target_size, created, last_tag_time, chain_id, parent
             FROM images {clause} ORDER BY created, id"
        );
        let mut stmt = self.0.prepare(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok(Raw {
                id: r.get(0)?,
                target: r.get(1)?,
                media_type: r.get(2)?,
                size: r.get(3)?,
                created: r.get(4)?,
                last_tag_time: r.get(5)?,
                chain_id: r.get(6)?,
                parent: r.get(7)?,
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            let raw = row?;
            out.push(ImageRecord {
                id: digest_col("images", raw.id)?,
                target: Target {
                    digest: digest_col("images", raw.target)?,
                    media_type: raw.media_type,
                    size: as_u64(raw.size),
                },
                created: raw.created,
                last_tag_time: raw.last_tag_time,
                chain_id: raw.chain_id,
                parent: raw.parent.map(|p| digest_col("images", p)).transpose()?,
            });
        }
        Ok(out)
    }

    /// All images, oldest first.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        self.images_where("", &[])
    }

    /// One image by ID.
    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        Ok(self
            .images_where("WHERE id = ?1", &[&id.to_string()])?
            .into_iter()
            .next())
    }

    /// The images whose ID starts with `prefix` (`sha256:abc…`).
    pub fn images_with_prefix(&self, prefix: &str) -> Result<Vec<ImageRecord>> {
        // LIKE would treat `_` and `%` specially; digests have neither, and
        // the caller passes only validated hex.
        self.images_where("WHERE substr(id, 1, length(?1)) = ?1", &[&prefix])
    }

    /// Removes an image with its tags and digests.
    pub fn delete_image(&self, id: &Digest) -> Result<bool> {
        Ok(self
            .0
            .execute("DELETE FROM images WHERE id = ?1", params![id.to_string()])?
            > 0)
    }

    /// Points a tag (a fully qualified `repo:tag`) at an image; returns the
    /// image it named before, if another. `now` becomes the image's last
    /// tag time; `None` leaves it (Docker's `load` does not set it).
    pub fn set_tag(&self, name: &str, image: &Digest, now: Option<i64>) -> Result<Option<Digest>> {
        let before = self.tag(name)?;
        self.0.execute(
            "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET image_id = ?2",
            params![name, image.to_string()],
        )?;
        if let Some(now) = now {
            self.0.execute(
                "UPDATE images SET last_tag_time = ?2 WHERE id = ?1",
                params![image.to_string(), now],
            )?;
        }
        Ok(before.filter(|b| b != image))
    }

    /// The image a tag names.
    pub fn tag(&self, name: &str) -> Result<Option<Digest>> {
        let id: Option<String> = self
            .0
            .query_row(
                "SELECT image_id FROM tags WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| digest_col("tags", id)).transpose()
    }

    /// Removes a tag.
    pub fn delete_tag(&self, name: &str) -> Result<bool> {
        Ok(self
            .0
            .execute("DELETE FROM tags WHERE name = ?1", params![name])?
            > 0)
    }

    /// The tags of an image, sorted.
    pub fn tags_of(&self, image: &Digest) -> Result<Vec<String>> {
        self.names_of("tags", image)
    }

    /// All tags with their images.
    pub fn all_tags(&self) -> Result<Vec<(String, Digest)>> {
        self.all_names("tags")
    }

    /// Records a `repo@digest` for an image.
    pub fn add_repo_digest(&self, name: &str, image: &Digest) -> Result<()> {
        self.0.execute(
            "INSERT INTO repo_digests (name, image_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET image_id = ?2",
            params![name, image.to_string()],
        )?;
        Ok(())
    }

    /// Removes a `repo@digest`.
    pub fn delete_repo_digest(&self, name: &str) -> Result<bool> {
        Ok(self
            .0
            .execute("DELETE FROM repo_digests WHERE name = ?1", params![name])?
            > 0)
    }

    /// The image a `repo@digest` names.
    pub fn repo_digest(&self, name: &str) -> Result<Option<Digest>> {
        let id: Option<String> = self
            .0
            .query_row(
                "SELECT image_id FROM repo_digests WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|id| digest_col("repo_digests", id)).transpose()
    }

    /// The `repo@digest` names of an image, sorted.
    pub fn repo_digests_of(&self, image: &Digest) -> Result<Vec<String>> {
        self.names_of("repo_digests", image)
    }

    /// All `repo@digest` names with their images.
    pub fn all_repo_digests(&self) -> Result<Vec<(String, Digest)>> {
        self.all_names("repo_digests")
    }

    fn names_of(&self, table: &'static str, image: &Digest) -> Result<Vec<String>> {
        let mut stmt = self.0.prepare(&format!(
            "SELECT name FROM {table} WHERE image_id = ?1 ORDER BY name"
        ))?;
        let rows = stmt.query_map(params![image.to_string()], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    fn all_names(&self, table: &'static str) -> Result<Vec<(String, Digest)>> {
        let mut stmt = self
            .0
            .prepare(&format!("SELECT name, image_id FROM {table} ORDER BY name"))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, id) = row?;
            out.push((name, digest_col(table, id)?));
        }
        Ok(out)
    }

    // ---- content references and layers

    /// Records that blob `parent` refers to `child`.
    pub fn add_content_ref(&self, parent: &Digest, child: &Digest) -> Result<()> {
        self.0.execute(
            "INSERT OR IGNORE INTO content_refs (parent, child) VALUES (?1, ?2)",
            params![parent.to_string(), child.to_string()],
        )?;
        Ok(())
    }

    /// The blobs `parent` refers to.
    pub fn content_children(&self, parent: &Digest) -> Result<Vec<Digest>> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT child FROM content_refs WHERE parent = ?1")?;
        let rows = stmt.query_map(params![parent.to_string()], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(digest_col("content_refs", row?)?);
        }
        Ok(out)
    }

    /// Removes the references of a blob that is gone.
    pub fn delete_content_refs(&self, parent: &Digest) -> Result<()> {
        self.0.execute(
            "DELETE FROM content_refs WHERE parent = ?1",
            params![parent.to_string()],
        )?;
        Ok(())
    }

    /// Records a layer blob's uncompressed digest and size.
    pub fn put_layer(&self, layer: &LayerRecord) -> Result<()> {
        self.0.execute(
            "INSERT INTO layers (blob, diff_id, media_type, diff_size) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(blob) DO UPDATE SET diff_id = ?2, media_type = ?3, diff_size = ?4",
            params![
                layer.blob.to_string(),
                layer.diff_id.to_string(),
                layer.media_type,
                as_i64(layer.diff_size)
            ],
        )?;
        Ok(())
    }

    fn layers_where(&self, column: &str, value: &Digest) -> Result<Vec<LayerRecord>> {
        let mut stmt = self.0.prepare_cached(&format!(
            "SELECT blob, diff_id, media_type, diff_size FROM layers WHERE {column} = ?1 ORDER BY blob"
        ))?;
        let rows = stmt.query_map(params![value.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (blob, diff_id, media_type, size) = row?;
            out.push(LayerRecord {
                blob: digest_col("layers", blob)?,
                diff_id: digest_col("layers", diff_id)?,
                media_type,
                diff_size: as_u64(size),
            });
        }
        Ok(out)
    }

    /// What is known about a layer blob.
    pub fn layer(&self, blob: &Digest) -> Result<Option<LayerRecord>> {
        Ok(self.layers_where("blob", blob)?.into_iter().next())
    }

    /// The layer blobs whose content is `diff_id`.
    pub fn layer_blobs(&self, diff_id: &Digest) -> Result<Vec<LayerRecord>> {
        self.layers_where("diff_id", diff_id)
    }

    /// Forgets a layer blob that is gone.
    pub fn delete_layer(&self, blob: &Digest) -> Result<()> {
        self.0.execute(
            "DELETE FROM layers WHERE blob = ?1",
            params![blob.to_string()],
        )?;
        Ok(())
    }

    // ---- snapshots

    /// Adds a snapshot record.
    pub fn put_snapshot(&self, s: &SnapshotRecord) -> Result<()> {
        self.0.execute(
            "INSERT INTO snapshots (key, id, parent, kind, created, size, labels)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                s.key,
                s.id,
                s.parent,
                s.kind,
                s.created,
                s.size.map(as_i64),
                s.labels
            ],
        )?;
        Ok(())
    }

    /// Renames an active snapshot to its committed key.
    pub fn commit_snapshot(&self, from: &str, to: &str, size: u64) -> Result<()> {
        self.0.execute(
            "UPDATE snapshots SET key = ?2, kind = 'committed', size = ?3 WHERE key = ?1",
            params![from, to, as_i64(size)],
        )?;
        Ok(())
    }

    /// One snapshot.
    pub fn snapshot(&self, key: &str) -> Result<Option<SnapshotRecord>> {
        Ok(self
            .snapshots_where("WHERE key = ?1", &[&key])?
            .into_iter()
            .next())
    }

    /// All snapshots.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        self.snapshots_where("", &[])
    }

    fn snapshots_where(
        &self,
        clause: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<SnapshotRecord>> {
        let sql = format!(
            "SELECT key, id, parent, kind, created, size, labels FROM snapshots {clause} ORDER BY id"
        );
        let mut stmt = self.0.prepare(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok(SnapshotRecord {
                key: r.get(0)?,
                id: r.get(1)?,
                parent: r.get(2)?,
                kind: r.get(3)?,
                created: r.get(4)?,
                size: r.get::<_, Option<i64>>(5)?.map(as_u64),
                labels: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The next free snapshot directory number.
    pub fn next_snapshot_id(&self) -> Result<i64> {
        let max: Option<i64> = self
            .0
            .query_row("SELECT MAX(id) FROM snapshots", [], |r| r.get(0))?;
        Ok(max.unwrap_or(0) + 1)
    }

    /// Removes a snapshot record.
    pub fn delete_snapshot(&self, key: &str) -> Result<bool> {
        Ok(self
            .0
            .execute("DELETE FROM snapshots WHERE key = ?1", params![key])?
            > 0)
    }

    // ---- leases

    /// Creates a lease.
    pub fn create_lease(&self, id: &str) -> Result<()> {
        self.0.execute(
            "INSERT INTO leases (id, created) VALUES (?1, ?2)",
            params![id, now_nanos()],
        )?;
        Ok(())
    }

    /// Adds a resource to a lease.
    pub fn lease_add(&self, lease: &str, kind: Resource, key: &str) -> Result<()> {
        self.0.execute(
            "INSERT OR IGNORE INTO lease_resources (lease, kind, key) VALUES (?1, ?2, ?3)",
            params![lease, kind.name(), key],
        )?;
        Ok(())
    }

    /// Ends a lease (what it held is garbage unless something else refers
    /// to it).
    pub fn delete_lease(&self, id: &str) -> Result<()> {
        self.0
            .execute("DELETE FROM leases WHERE id = ?1", params![id])?;
        Ok(())
    }

    /// All leases.
    pub fn leases(&self) -> Result<Vec<String>> {
        let mut stmt = self.0.prepare("SELECT id FROM leases ORDER BY created")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Every resource of a kind held by any lease.
    pub fn leased(&self, kind: Resource) -> Result<Vec<String>> {
        let mut stmt = self
            .0
            .prepare("SELECT DISTINCT key FROM lease_resources WHERE kind = ?1")?;
        let rows = stmt.query_map(params![kind.name()], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = Db::open(&dir.path().join("meta.db")).unwrap_or_else(|e| panic!("{e}"));
        (dir, db)
    }

    fn image(n: u8) -> ImageRecord {
        ImageRecord {
            id: Digest::sha256(&[n]),
            target: Target {
                digest: Digest::sha256(&[n, n]),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: 100,
            },
            created: i64::from(n),
            last_tag_time: None,
            chain_id: None,
            parent: None,
        }
    }

    #[test]
    fn schema_is_versioned_and_newer_files_are_refused() {
        let (dir, db) = db();
        assert_eq!(db.version().ok(), Some(MIGRATIONS.len()));
        drop(db);
        let path = dir.path().join("meta.db");
        let conn = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        conn.pragma_update(None, "user_version", 99)
            .unwrap_or_else(|e| panic!("{e}"));
        drop(conn);
        assert!(matches!(
            Db::open(&path),
            Err(DbError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn images_tags_and_digests() {
        let (_d, db) = db();
        let (a, b) = (image(1), image(2));
        db.write(|tx| {
            tx.put_image(&a)?;
            tx.put_image(&b)?;
            assert_eq!(tx.set_tag("docker.io/library/x:1", &a.id, Some(5))?, None);
            assert_eq!(
                tx.set_tag("docker.io/library/x:1", &b.id, Some(6))?,
                Some(a.id.clone())
            );
            tx.set_tag("docker.io/library/x:2", &b.id, Some(7))?;
            tx.add_repo_digest("docker.io/library/x@sha256:00", &b.id)?;
            Ok::<_, DbError>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        db.read(|tx| {
            assert_eq!(tx.images()?.len(), 2);
            assert!(tx.tags_of(&a.id)?.is_empty());
            assert_eq!(
                tx.tags_of(&b.id)?,
                vec!["docker.io/library/x:1", "docker.io/library/x:2"]
            );
            assert_eq!(tx.image(&b.id)?.and_then(|i| i.last_tag_time), Some(7));
            let prefix = &b.id.to_string()[..14];
            assert_eq!(tx.images_with_prefix(prefix)?.len(), 1);
            Ok::<_, DbError>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        // Deleting an image takes its names with it.
        db.write(|tx| tx.delete_image(&b.id))
            .unwrap_or_else(|e| panic!("{e}"));
        db.read(|tx| {
            assert!(tx.all_tags()?.is_empty());
            assert!(tx.all_repo_digests()?.is_empty());
            Ok::<_, DbError>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_failed_transaction_changes_nothing() {
        let (_d, db) = db();
        let a = image(1);
        let r: Result<()> = db.write(|tx| {
            tx.put_image(&a)?;
            tx.set_tag("t", &a.id, Some(1))?;
            // A tag for an image that does not exist violates the schema.
            tx.set_tag("u", &Digest::sha256(b"none"), None)?;
            Ok(())
        });
        assert!(r.is_err());
        let n = db.read(|tx| tx.images()).unwrap_or_default().len();
        assert_eq!(n, 0);
    }

    #[test]
    fn leases_hold_resources_until_deleted() {
        let (_d, db) = db();
        db.write(|tx| {
            tx.create_lease("load-1")?;
            tx.lease_add("load-1", Resource::Content, "sha256:aa")?;
            tx.lease_add("load-1", Resource::Snapshot, "chain")?;
            Ok::<_, DbError>(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let held = db
            .read(|tx| tx.leased(Resource::Content))
            .unwrap_or_default();
        assert_eq!(held, vec!["sha256:aa"]);
        db.write(|tx| tx.delete_lease("load-1"))
            .unwrap_or_else(|e| panic!("{e}"));
        let held = db
            .read(|tx| tx.leased(Resource::Snapshot))
            .unwrap_or_default();
        assert!(held.is_empty());
    }
}
