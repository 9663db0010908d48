//! `list` output: runc's table (Go's tabwriter with minimum width 12 and
//! padding 3) and JSON.

use std::os::unix::fs::MetadataExt;

use hafen_runtime::Container;
use hafen_runtime::state::StateDocument;

/// The user name of a uid from `/etc/passwd`, or `#<uid>`.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Lays out rows like Go's `tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)`:
/// every column but the last is as wide as its widest cell plus 3, at least 12.
fn tabulate(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .map(|w| (w + 3).max(12))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}", width = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

/// The `list` output.
pub fn list(containers: &[Container], json: bool, quiet: bool) -> String {
    if quiet {
        return containers.iter().map(|c| format!("{}\n", c.id())).collect();
    }
    let docs: Vec<StateDocument<'_>> = containers
        .iter()
        .map(|c| {
            let owner = std::fs::metadata(&c.dir)
                .map(|m| user_name(m.uid()))
                .unwrap_or_default();
            StateDocument {
                owner,
                ..c.document()
            }
        })
        .collect();
    if json {
        if docs.is_empty() {
            return "null\n".to_string();
        }
        return format!("{}\n", serde_json::to_string(&docs).unwrap_or_default());
    }
    let mut rows = vec![
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
            .map(String::from)
            .to_vec(),
    ];
    for d in &docs {
        rows.push(vec![
            d.id.to_string(),
            d.pid.to_string(),
            d.status.to_string(),
            d.bundle.display().to_string(),
            d.created.to_string(),
            d.owner.clone(),
        ]);
    }
    tabulate(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout_matches_runc() {
        let rows = vec![
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec(),
            [
                "t1",
                "4972",
                "created",
                "/tmp/rt/b1",
                "2026-11-22T02:06:08.204365911Z",
                "root",
            ]
            .map(String::from)
            .to_vec(),
        ];
        assert_eq!(
            tabulate(&rows),
            "ID          PID         STATUS      BUNDLE       CREATED                          OWNER\n\
             t1          4972        created     /tmp/rt/b1   2026-11-22T02:06:08.204365911Z   root\n"
        );
        let empty = vec![
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec(),
        ];
        assert_eq!(
            tabulate(&empty),
            "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
        );
    }
}
