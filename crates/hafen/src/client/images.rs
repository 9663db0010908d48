//! `hafen images`, `image inspect|history|tag|rm|prune|import|load|save`
//! and their short forms, as the docker CLI does them.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};

use clap::Args;
use hafen_api::client::{self, ClientError, encode, next_chunk};
use hafen_api::filters::{self, Filters};
use hafen_api::models::{DeleteItem, HistoryItem, ImagePruneReport, ImageSummary, JsonMessage};
use hyper::Method;

use super::format::{self, ListFormat, human_size, short_id, since};
use super::{CliError, Global, Session, out};

fn parse_filters(list: &[String]) -> Result<Filters, CliError> {
    let mut f = Filters::new();
    for item in list {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            CliError::Failed(format!(
                "bad format of filter (expected name=value): {item}"
            ))
        })?;
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(f)
}

/// `hafen images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (intermediate ones of builds too).
    #[arg(short, long)]
    all: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Filter (`dangling=true`, `label=k=v`, `before=`, `since=`, `reference=`).
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Go template, `table`, `table TEMPLATE` or `json`.
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Only IDs.
    #[arg(short, long)]
    quiet: bool,
    /// `REPOSITORY[:TAG]` to list.
    reference: Option<String>,
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
    ("Containers", "CONTAINERS"),
];

/// The rows of `docker images`: one per repository and tag.
fn image_rows(
    images: &[ImageSummary],
    digests: bool,
    no_trunc: bool,
) -> Vec<BTreeMap<String, String>> {
    let mut rows = Vec::new();
    for i in images {
        let row = |repo: &str, tag: &str, digest: &str| {
            let mut r = BTreeMap::new();
            r.insert(
                "ID".into(),
                if no_trunc {
                    i.id.clone()
                } else {
                    short_id(&i.id)
                },
            );
            r.insert("Repository".into(), repo.to_string());
            r.insert("Tag".into(), tag.to_string());
            r.insert("Digest".into(), digest.to_string());
            r.insert("CreatedSince".into(), since(i.created));
            r.insert("CreatedAt".into(), format::go_time(i.created));
            r.insert("Size".into(), human_size(i.size, 3));
            let na =
                |v: i64, f: &dyn Fn(i64) -> String| if v < 0 { "N/A".to_string() } else { f(v) };
            r.insert(
                "SharedSize".into(),
                na(i.shared_size, &|v| human_size(v, 4)),
            );
            r.insert(
                "UniqueSize".into(),
                na(i.shared_size, &|v| human_size(i.size - v, 4)),
            );
            r.insert("VirtualSize".into(), human_size(i.size, 4));
            r.insert("Containers".into(), na(i.containers, &|v| v.to_string()));
            r
        };
        let tags: Vec<&String> = i
            .repo_tags
            .iter()
            .filter(|t| *t != "<none>:<none>")
            .collect();
        let digest_refs: Vec<&String> = i
            .repo_digests
            .iter()
            .filter(|d| *d != "<none>@<none>")
            .collect();
        if tags.is_empty() && digest_refs.is_empty() {
            rows.push(row("<none>", "<none>", "<none>"));
            continue;
        }
        // Repositories in order of first appearance.
        let mut repos: Vec<String> = Vec::new();
        let repo_of = |name: &str, sep: char| {
            name.rsplit_once(sep)
                .map(|(r, _)| r.to_string())
                .unwrap_or_default()
        };
        for t in &tags {
            let r = repo_of(t, ':');
            if !repos.contains(&r) {
                repos.push(r);
            }
        }
        for d in &digest_refs {
            let r = repo_of(d, '@');
            if !repos.contains(&r) {
                repos.push(r);
            }
        }
        for repo in repos {
            let digest = digest_refs
                .iter()
                .find(|d| repo_of(d, '@') == repo)
                .and_then(|d| d.rsplit_once('@').map(|(_, x)| x.to_string()));
            let repo_tags: Vec<String> = tags
                .iter()
                .filter(|t| repo_of(t, ':') == repo)
                .filter_map(|t| t.rsplit_once(':').map(|(_, x)| x.to_string()))
                .collect();
            let shown_digest = |d: &Option<String>| match (digests, d) {
                (true, Some(d)) => d.clone(),
                (true, None) => "<none>".to_string(),
                (false, _) => "<none>".to_string(),
            };
            if repo_tags.is_empty() {
                rows.push(row(&repo, "<none>", &shown_digest(&digest)));
            }
            for tag in repo_tags {
                rows.push(row(&repo, &tag, &shown_digest(&digest)));
            }
        }
    }
    rows
}

/// `hafen images`.
pub fn images(g: &Global, a: ImagesArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut f = parse_filters(&a.filter)?;
    if let Some(r) = &a.reference {
        f.entry("reference".into()).or_default().push(r.clone());
    }
    let mut path = String::from("/images/json?");
    if a.all {
        path.push_str("all=1&");
    }
    if !f.is_empty() {
        path.push_str(&format!("filters={}", encode(&filters::encode(&f))));
    }
    let list: Vec<ImageSummary> =
        s.rt.block_on(s.client.get_json(path.trim_end_matches(['?', '&'])))?;
    let default = if a.digests {
        "table {{.Repository}}\\t{{.Tag}}\\t{{.Digest}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}"
            .to_string()
    } else {
        "table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}\\t{{.CreatedSince}}\\t{{.Size}}".to_string()
    };
    let mut format = a.format.clone();
    if a.quiet {
        format = Some("{{.ID}}".into());
    } else if a.digests {
        if let Some(f) = format
            .as_mut()
            .filter(|f| f.starts_with("table") && !f.contains("{{.Digest}}"))
        {
            f.push_str("\\t{{.Digest}}");
        }
    }
    let rows = image_rows(&list, a.digests, a.no_trunc);
    let headers: BTreeMap<&str, &str> = IMAGE_HEADERS.iter().copied().collect();
    let text = ListFormat::new(format.as_deref(), &default).render(&rows, &headers)?;
    out(&text);
    Ok(())
}

/// `hafen image inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// The images.
    #[arg(required = true)]
    images: Vec<String>,
}

/// `hafen image inspect`.
pub fn inspect(g: &Global, a: InspectArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.images {
        match s.rt.block_on(
            s.client
                .get_json::<serde_json::Value>(&format!("/images/{name}/json")),
        ) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match a.format.as_deref() {
        None | Some("") => {
            let mut text = serde_json::to_string_pretty(&found).unwrap_or_else(|_| "[]".into());
            text = reindent(&text);
            out(&format!("{text}\n"));
        }
        Some("json") => out(&format!(
            "{}\n",
            serde_json::to_string(&found).unwrap_or_default()
        )),
        Some(f) => {
            for v in &found {
                out(&format!("{}\n", format::render_one(f, v)?));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(errors.join("\n")))
    }
}

/// serde_json indents with 2 spaces; docker with 4.
pub(crate) fn reindent(text: &str) -> String {
    text.lines()
        .map(|l| {
            let n = l.len() - l.trim_start_matches(' ').len();
            format!("{}{}", " ".repeat(n * 2), &l[n..])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `hafen history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Go template, `table …` or `json`.
    #[arg(long)]
    format: Option<String>,
    /// Sizes and dates for humans.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Do not truncate.
    #[arg(long)]
    no_trunc: bool,
    /// Only IDs.
    #[arg(short, long)]
    quiet: bool,
    /// The image.
    image: String,
}

/// `hafen history`.
pub fn history(g: &Global, a: HistoryArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let items: Vec<HistoryItem> =
        s.rt.block_on(s.client.get_json(&format!("/images/{}/history", a.image)))?;
    let rows: Vec<BTreeMap<String, String>> = items
        .iter()
        .map(|h| {
            let created_at = chrono::DateTime::from_timestamp(h.created, 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let mut created_by = h.created_by.replace('\t', " ");
            if !a.no_trunc && created_by.chars().count() > 45 {
                created_by = created_by.chars().take(44).collect::<String>() + "…";
            }
            let mut r = BTreeMap::new();
            r.insert(
                "ID".into(),
                if a.no_trunc || h.id == "<missing>" {
                    h.id.clone()
                } else {
                    short_id(&h.id)
                },
            );
            r.insert(
                "CreatedSince".into(),
                if !a.human {
                    created_at.clone()
                } else if h.created <= 946_684_800 {
                    "N/A".into()
                } else {
                    since(h.created)
                },
            );
            r.insert("CreatedAt".into(), created_at);
            r.insert("CreatedBy".into(), created_by);
            r.insert(
                "Size".into(),
                if a.human {
                    human_size(h.size, 3)
                } else {
                    h.size.to_string()
                },
            );
            r.insert("Comment".into(), h.comment.clone());
            r
        })
        .collect();
    let default = if a.human {
        "table {{.ID}}\\t{{.CreatedSince}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"
    } else {
        "table {{.ID}}\\t{{.CreatedAt}}\\t{{.CreatedBy}}\\t{{.Size}}\\t{{.Comment}}"
    };
    let format = if a.quiet {
        Some("{{.ID}}".to_string())
    } else {
        a.format
    };
    let headers: BTreeMap<&str, &str> = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ]
    .into_iter()
    .collect();
    out(&ListFormat::new(format.as_deref(), default).render(&rows, &headers)?);
    Ok(())
}

/// `hafen tag`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// `SOURCE_IMAGE[:TAG]`.
    source: String,
    /// `TARGET_IMAGE[:TAG]`.
    target: String,
}

/// `hafen tag`.
pub fn tag(g: &Global, a: TagArgs) -> Result<(), CliError> {
    let parse = |text: &str| {
        hafen_oci::Reference::parse_normalized(text).map_err(|e| {
            CliError::Failed(format!(
                "Error parsing reference: {text:?} is not a valid repository/tag: {e}"
            ))
        })
    };
    parse(&a.source)?;
    let target = parse(&a.target)?;
    if target.digest().is_some() {
        return Err(CliError::Failed(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    let s = Session::open(g)?;
    let tag = target.tag().unwrap_or("latest");
    let path = format!(
        "/images/{}/tag?repo={}&tag={}",
        a.source,
        encode(&target.name()),
        encode(tag)
    );
    s.rt.block_on(s.client.request(Method::POST, &path, None, client::empty()))?;
    Ok(())
}

/// `hafen rmi`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove even an image with several tags.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    no_prune: bool,
    /// The images.
    #[arg(required = true)]
    images: Vec<String>,
}

fn delete_lines(items: &[DeleteItem], lower: bool) -> String {
    let mut text = String::new();
    for i in items {
        match (&i.deleted, &i.untagged) {
            (Some(d), _) => text.push_str(&format!(
                "{}: {d}\n",
                if lower { "deleted" } else { "Deleted" }
            )),
            (None, Some(u)) => text.push_str(&format!(
                "{}: {u}\n",
                if lower { "untagged" } else { "Untagged" }
            )),
            _ => {}
        }
    }
    text
}

/// `hafen rmi`.
pub fn rmi(g: &Global, a: RmiArgs) -> Result<(), CliError> {
    let s = Session::open(g)?;
    let mut errors = Vec::new();
    let mut only_missing = true;
    for name in &a.images {
        let mut path = format!("/images/{name}?");
        if a.force {
            path.push_str("force=1&");
        }
        if a.no_prune {
            path.push_str("noprune=1");
        }
        match s.rt.block_on(s.client.call_json::<Vec<DeleteItem>>(
            Method::DELETE,
            path.trim_end_matches(['?', '&']),
            None,
        )) {
            Ok(items) => out(&delete_lines(&items, false)),
            Err(e) => {
                if !matches!(e, ClientError::Api { status: 404, .. }) {
                    only_missing = false;
                }
                errors.push(e.to_string());
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    if a.force && only_missing {
        eprintln!("{}", errors.join("\n"));
        return Ok(());
    }
    Err(CliError::Failed(errors.join("\n")))
}

/// `hafen image prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// All images without containers, not only dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not ask.
    #[arg(short, long)]
    force: bool,
    /// `until=…`, `label=…`.
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `hafen image prune`.
pub fn prune(g: &Global, a: PruneArgs) -> Result<(), CliError> {
    let mut f = parse_filters(&a.filter)?;
    f.insert(
        "dangling".into(),
        vec![if a.all { "false" } else { "true" }.into()],
    );
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        out(&format!("{warning}\n"));
        if !super::confirm("Are you sure you want to continue?") {
            return Ok(());
        }
    }
    let s = Session::open(g)?;
    let report: ImagePruneReport = s.rt.block_on(s.client.call_json(
        Method::POST,
        &format!("/images/prune?filters={}", encode(&filters::encode(&f))),
        None,
    ))?;
    let mut text = String::new();
    if let Some(items) = report.images_deleted.filter(|i| !i.is_empty()) {
        text.push_str("Deleted Images:\n");
        text.push_str(&delete_lines(&items, true));
        text.push('\n');
    }
    text.push_str(&format!(
        "Total reclaimed space: {}\n",
        human_size(i64::try_from(report.space_reclaimed).unwrap_or(i64::MAX), 4)
    ));
    out(&text);
    Ok(())
}

/// Reads a JSON-message stream, printing as the docker CLI does; an
/// error message ends it with that error.
fn print_messages(
    s: &Session,
    resp: hyper::Response<hyper::body::Incoming>,
) -> Result<Vec<JsonMessage>, CliError> {
    let mut seen = Vec::new();
    read_messages(s, resp, &mut |m| {
        if let Some(e) = m
            .error_detail
            .as_ref()
            .map(|d| d.message.clone())
            .or_else(|| m.error.clone())
        {
            return Err(CliError::Failed(e));
        }
        if let Some(t) = &m.stream {
            out(t);
        } else if let Some(st) = &m.status
            && m.progress_detail.is_none()
        {
            match &m.id {
                Some(id) => out(&format!("{id}: {st}\n")),
                None => out(&format!("{st}\n")),
            }
        }
        seen.push(m);
        Ok(true)
    })?;
    Ok(seen)
}

/// Reads a stream of JSON messages as they come, giving each to `each`;
/// it stops early when `each` says `false` or fails.
pub(super) fn read_messages(
    s: &Session,
    resp: hyper::Response<hyper::body::Incoming>,
    each: &mut dyn FnMut(JsonMessage) -> Result<bool, CliError>,
) -> Result<(), CliError> {
    let mut body = resp.into_body();
    let mut pending = Vec::<u8>::new();
    loop {
        let chunk = s.rt.block_on(next_chunk(&mut body))?;
        let Some(chunk) = chunk else { break };
        pending.extend_from_slice(&chunk);
        let mut stream = serde_json::Deserializer::from_slice(&pending).into_iter::<JsonMessage>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                Some(Ok(m)) => {
                    consumed = stream.byte_offset();
                    if !each(m)? {
                        return Ok(());
                    }
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    return Err(CliError::Failed(format!(
                        "cannot read the daemon's answer: {e}"
                    )));
                }
                None => break,
            }
        }
        pending.drain(..consumed);
    }
    Ok(())
}

/// `hafen load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from a file instead of stdin.
    #[arg(short, long)]
    input: Option<std::path::PathBuf>,
    /// Less output.
    #[arg(short, long)]
    quiet: bool,
}

/// `hafen load`.
pub fn load(g: &Global, a: LoadArgs) -> Result<(), CliError> {
    let body: Box<dyn Read + Send> = match &a.input {
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|e| CliError::Failed(format!("open {}: {e}", p.display())))?,
        ),
        None => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::Failed(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            Box::new(std::io::stdin())
        }
    };
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let s = Session::open(g)?;
    let resp = s.rt.block_on(s.client.request(
        Method::POST,
        &format!("/images/load?quiet={}", u8::from(quiet)),
        Some("application/x-tar"),
        client::from_reader(body),
    ))?;
    print_messages(&s, resp).map(|_| ())
}

/// `hafen save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout.
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    /// The images.
    #[arg(required = true)]
    images: Vec<String>,
}

/// `hafen save`.
pub fn save(g: &Global, a: SaveArgs) -> Result<(), CliError> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Failed(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let s = Session::open(g)?;
    let query: Vec<String> = a
        .images
        .iter()
        .map(|n| format!("names={}", encode(n)))
        .collect();
    let resp = s.rt.block_on(s.client.request(
        Method::GET,
        &format!("/images/get?{}", query.join("&")),
        None,
        client::empty(),
    ))?;
    let mut body = resp.into_body();
    match &a.output {
        Some(path) => {
            // Atomically: a partial archive never carries the name.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile_in(dir)?;
            while let Some(chunk) = s.rt.block_on(next_chunk(&mut body))? {
                tmp.1
                    .write_all(&chunk)
                    .map_err(|e| CliError::Failed(format!("write {}: {e}", path.display())))?;
            }
            tmp.1.flush().map_err(|e| CliError::Failed(e.to_string()))?;
            std::fs::rename(&tmp.0, path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp.0);
                CliError::Failed(format!("cannot write {}: {e}", path.display()))
            })?;
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = s.rt.block_on(next_chunk(&mut body))? {
                if stdout.write_all(&chunk).is_err() {
                    return Err(CliError::Exit(1));
                }
            }
            let _ = stdout.flush();
        }
    }
    Ok(())
}

/// A new file (mode 0600) next to where the archive goes.
fn tempfile_in(dir: &std::path::Path) -> Result<(std::path::PathBuf, std::fs::File), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    for n in 0..100 {
        let p = dir.join(format!(".hafen-save-{}-{n}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(CliError::Failed(format!(
                    "cannot write in {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    Err(CliError::Failed(format!(
        "cannot make a file in {}",
        dir.display()
    )))
}

/// `hafen import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Dockerfile instructions for the config (`CMD ["sh"]`).
    #[arg(short, long = "change")]
    change: Vec<String>,
    /// The commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// `os[/arch[/variant]]`.
    #[arg(long)]
    platform: Option<String>,
    /// A tarball or `-` for stdin.
    file: String,
    /// `REPOSITORY[:TAG]`.
    reference: Option<String>,
}

/// `hafen import`.
pub fn import(g: &Global, a: ImportArgs) -> Result<(), CliError> {
    if let Some(r) = &a.reference {
        hafen_oci::Reference::parse_normalized(r).map_err(|e| CliError::Failed(e.to_string()))?;
    }
    if a.file.starts_with("http://") || a.file.starts_with("https://") {
        return Err(CliError::Failed(
            "importing from a URL is not supported: download it and import the file".into(),
        ));
    }
    let body: Box<dyn Read + Send> = if a.file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&a.file)
                .map_err(|e| CliError::Failed(format!("open {}: {e}", a.file)))?,
        )
    };
    let mut q = vec!["fromSrc=-".to_string()];
    if let Some(r) = &a.reference {
        q.push(format!("repo={}", encode(r)));
    }
    if let Some(m) = &a.message {
        q.push(format!("message={}", encode(m)));
    }
    for c in &a.change {
        q.push(format!("changes={}", encode(c)));
    }
    if let Some(p) = &a.platform {
        q.push(format!("platform={}", encode(p)));
    }
    let s = Session::open(g)?;
    let resp = s.rt.block_on(s.client.request(
        Method::POST,
        &format!("/images/create?{}", q.join("&")),
        Some("text/plain"),
        client::from_reader(body),
    ))?;
    print_messages(&s, resp).map(|_| ())
}
