//! Task trees: records grouped by task id and drawn as the tree the ids spell out.
//!
//! A record's `context.key` is `<counter>@<task id>`; a top-level task id is a UUID and
//! a subtask's is `<parent id>/<n>`, also when the subtask ran in another process
//! (Python's `get_foreign_task` / `import_task`). So the ids alone give the tree, across
//! hosts and processes, whatever order the records arrive in.
//!
//! For each task the tree shows what ran (the message of its first record: entering a
//! task logs its description), whether it failed (a record at ERROR or above, such as
//! the `FAILED <description>` record a task logs when an exception leaves it), how long
//! it took (first to last `created` over the task and its subtasks), how many records it
//! logged and which host and process logged them.

use super::format::{paint, write_clean, BOLD_RED, GREEN, RED};
use distlog::Record;
use std::collections::HashMap;
use std::io::Write;

/// One task in a [`TaskTree`].
#[derive(Debug, Clone, Default)]
struct Node {
    /// Records logged in this task itself.
    records: usize,
    /// Earliest and latest `created` of those records.
    first: Option<f64>,
    last: Option<f64>,
    /// The message of the record with the lowest counter: the task's description.
    title: Option<(i64, String)>,
    /// The first failure: its message and the last line of its exception.
    failure: Option<String>,
    /// `host:pid` of the processes that logged in this task, in order seen.
    processes: Vec<String>,
    /// Child ids, in order seen.
    children: Vec<String>,
}

/// Records grouped by task, drawn as a tree.
///
/// ```
/// use distlogd::tree::TaskTree;
/// use distlog::{Record, Value};
///
/// fn rec(key: &str, level: i64, msg: &str, created: f64) -> Record {
///     Record::from_pairs([
///         ("levelno", level.into()),
///         ("created", created.into()),
///         ("process", 7.into()),
///         ("context", Value::Dict(vec![("key".into(), key.into())])),
///         ("message", msg.into()),
///         ("hostname", "web1".into()),
///     ])
/// }
/// let mut tree = TaskTree::default();
/// tree.add(&rec("0@job", 20, "nightly job", 10.0));
/// tree.add(&rec("0@job/1", 20, "fetch", 10.5));
/// tree.add(&rec("1@job/1", 40, "FAILED fetch", 11.0));
/// tree.add(&rec("1@job", 20, "done", 12.0));
/// let mut out = Vec::new();
/// tree.render(&mut out);
/// assert_eq!(String::from_utf8(out).unwrap(), "\
/// ok     job  nightly job  (2.000s, 2 records, web1:7)
/// └── FAILED job/1  fetch  (0.500s, 2 records, web1:7)  FAILED fetch
/// ");
/// ```
#[derive(Debug, Clone, Default)]
pub struct TaskTree {
    nodes: HashMap<String, Node>,
    roots: Vec<String>,
    outside: usize,
}

impl TaskTree {
    /// Adds a record to its task (records without a task are only counted).
    pub fn add(&mut self, record: &Record) {
        let Some(key) = record.context_key() else {
            self.outside += 1;
            return;
        };
        let (counter, id) = match key.split_once('@') {
            Some((c, id)) => (c.parse::<i64>().unwrap_or(i64::MAX), id),
            None => (i64::MAX, key),
        };
        self.ensure(id);
        let Some(node) = self.nodes.get_mut(id) else {
            return;
        };
        node.records += 1;
        if let Some(t) = record.created().filter(|t| t.is_finite()) {
            node.first = Some(node.first.map_or(t, |f| f.min(t)));
            node.last = Some(node.last.map_or(t, |l| l.max(t)));
        }
        let message = record.message().unwrap_or("");
        if node.title.as_ref().is_none_or(|(c, _)| counter < *c) {
            node.title = Some((counter, message.to_string()));
        }
        let level = record.levelno().unwrap_or(0);
        let failed = level >= 40;
        let own_failure = message.starts_with("FAILED ") && level >= 40;
        if failed && (node.failure.is_none() || own_failure) {
            let mut what = message.to_string();
            if let Some(last) = record
                .exc_text()
                .and_then(|e| e.rsplit("\\n").find(|l| !l.trim().is_empty()))
            {
                what.push_str(": ");
                what.push_str(last.trim());
            }
            node.failure = Some(what);
        }
        let host = record.hostname().unwrap_or("-");
        let process = match record.get("process").and_then(distlog::Value::as_i64) {
            Some(pid) => format!("{host}:{pid}"),
            None => host.to_string(),
        };
        if !node.processes.contains(&process) {
            node.processes.push(process);
        }
    }

    /// Records seen outside any task.
    pub fn outside(&self) -> usize {
        self.outside
    }

    /// Number of tasks (including ancestors known only from a subtask's id).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no record in a task has been added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Creates the node for `id` and its ancestors, linking each to its parent.
    fn ensure(&mut self, id: &str) {
        if self.nodes.contains_key(id) {
            return;
        }
        self.nodes.insert(id.to_string(), Node::default());
        match id.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => {
                self.ensure(parent);
                if let Some(p) = self.nodes.get_mut(parent) {
                    p.children.push(id.to_string());
                }
            }
            _ => self.roots.push(id.to_string()),
        }
    }

    /// Earliest first and latest last `created` over a task and its subtasks.
    fn span(&self, id: &str) -> (Option<f64>, Option<f64>) {
        let Some(node) = self.nodes.get(id) else {
            return (None, None);
        };
        let (mut first, mut last) = (node.first, node.last);
        for child in &node.children {
            let (f, l) = self.span(child);
            first = match (first, f) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            last = match (last, l) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        (first, last)
    }

    /// Draws the tree, one line per task, without colors.
    pub fn render(&self, out: &mut Vec<u8>) {
        self.render_styled(out, false);
    }

    /// Draws the tree, one line per task; `color` adds ANSI colors.
    pub fn render_styled(&self, out: &mut Vec<u8>, color: bool) {
        let mut roots: Vec<&String> = self.roots.iter().collect();
        roots.sort_by(|a, b| {
            let fa = self.span(a).0.unwrap_or(f64::INFINITY);
            let fb = self.span(b).0.unwrap_or(f64::INFINITY);
            fa.total_cmp(&fb)
        });
        for root in roots {
            self.render_node(out, root, "", None, color);
        }
        if self.outside > 0 {
            let _ = writeln!(out, "({} records outside any task)", self.outside);
        }
    }

    fn render_node(
        &self,
        out: &mut Vec<u8>,
        id: &str,
        indent: &str,
        last_child: Option<bool>,
        color: bool,
    ) {
        let Some(node) = self.nodes.get(id) else {
            return;
        };
        out.extend_from_slice(indent.as_bytes());
        match last_child {
            Some(true) => out.extend_from_slice("└── ".as_bytes()),
            Some(false) => out.extend_from_slice("├── ".as_bytes()),
            None => {}
        }
        let (status, style) = if node.failure.is_some() {
            ("FAILED", BOLD_RED)
        } else {
            ("ok    ", GREEN)
        };
        paint(out, color, style, status);
        out.push(b' ');
        write_clean(out, id);
        out.extend_from_slice(b"  ");
        match &node.title {
            Some((_, title)) => write_clean(out, title),
            None => out.extend_from_slice(b"(no records)"),
        }
        let (first, last) = self.span(id);
        out.extend_from_slice(b"  (");
        if let (Some(f), Some(l)) = (first, last) {
            let _ = write!(out, "{:.3}s, ", l - f);
        }
        let _ = write!(
            out,
            "{} record{}",
            node.records,
            if node.records == 1 { "" } else { "s" }
        );
        if !node.processes.is_empty() {
            out.extend_from_slice(b", ");
            write_clean(out, &node.processes.join(" "));
        }
        out.push(b')');
        if let Some(failure) = &node.failure {
            out.extend_from_slice(b"  ");
            paint(out, color, RED, failure);
        }
        out.push(b'\n');

        let mut children: Vec<&String> = node.children.iter().collect();
        children.sort_by(|a, b| child_order(a).cmp(&child_order(b)));
        let child_indent = match last_child {
            Some(true) => format!("{indent}    "),
            Some(false) => format!("{indent}│   "),
            None => indent.to_string(),
        };
        let n = children.len();
        for (i, child) in children.into_iter().enumerate() {
            self.render_node(out, child, &child_indent, Some(i + 1 == n), color);
        }
    }
}

/// Subtasks sort by their number (`/2` before `/10`), anything else after, by name.
fn child_order(id: &str) -> (u64, &str) {
    let last = id.rsplit('/').next().unwrap_or(id);
    (last.parse().unwrap_or(u64::MAX), last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use distlog::Value;

    fn rec(key: Option<&str>, level: i64, msg: &str, created: f64, host: &str) -> Record {
        let mut r = Record::new();
        r.insert("levelno", level);
        r.insert("created", created);
        r.insert("process", 1);
        r.insert(
            "context",
            key.map_or(Value::None, |k| Value::Dict(vec![("key".into(), k.into())])),
        );
        r.insert("message", msg);
        r.insert("hostname", host);
        r
    }

    #[test]
    fn missing_ancestors_and_ordering() {
        let mut t = TaskTree::default();
        t.add(&rec(Some("0@a/10"), 20, "ten", 5.0, "h2"));
        t.add(&rec(Some("0@a/2"), 20, "two", 3.0, "h1"));
        t.add(&rec(Some("0@a/2/1"), 50, "boom", 4.0, "h1"));
        t.add(&rec(None, 20, "loose", 1.0, "h1"));
        assert_eq!(t.len(), 4);
        let mut out = Vec::new();
        t.render(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "ok     a  (no records)  (2.000s, 0 records)\n\
             ├── ok     a/2  two  (1.000s, 1 record, h1:1)\n\
             │   └── FAILED a/2/1  boom  (0.000s, 1 record, h1:1)  boom\n\
             └── ok     a/10  ten  (0.000s, 1 record, h2:1)\n\
             (1 records outside any task)\n"
        );
    }
}
