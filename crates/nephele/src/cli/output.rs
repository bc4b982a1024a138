//! Printing resources: a table for people, JSON, YAML or XML for programs,
//! bare ids with `--quiet`.

use clap::ValueEnum;
use comfy_table::{presets, Table};
use serde_json::{json, Value};

use super::{Exit, Failure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
    Xml,
}

/// What a resource looks like in a table, and its name in XML.
pub struct Kind {
    /// The XML element of one item (`instance`), as the server names it.
    pub element: &'static str,
    /// The field that identifies an item, printed by `--quiet`.
    pub id: &'static str,
    /// Columns of a list: header and JSON pointer.
    pub columns: &'static [(&'static str, &'static str)],
}

pub const ORGANIZATION: Kind = Kind {
    element: "organization",
    id: "id",
    columns: &[
        ("ID", "/id"),
        ("NAME", "/name"),
        ("PARENT", "/parentId"),
        ("STATUS", "/status"),
        ("CREATED", "/createdAt"),
    ],
};
pub const USER: Kind = Kind {
    element: "user",
    id: "id",
    columns: &[
        ("ID", "/id"),
        ("LOGIN", "/login"),
        ("EMAIL", "/email"),
        ("ROLES", "/roles"),
        ("STATUS", "/status"),
    ],
};
pub const ROLE: Kind = Kind {
    element: "role",
    id: "id",
    columns: &[
        ("ID", "/id"),
        ("NAME", "/name"),
        ("BUILT-IN", "/builtin"),
        ("PERMISSIONS", "/permissions"),
    ],
};
pub const API_KEY: Kind = Kind {
    element: "apiKey",
    id: "id",
    columns: &[
        ("ID", "/id"),
        ("NAME", "/name"),
        ("PREFIX", "/prefix"),
        ("LAST USED", "/lastUsedAt"),
    ],
};
pub const CLIENT: Kind = Kind {
    element: "client",
    id: "client_id",
    columns: &[
        ("CLIENT ID", "/client_id"),
        ("NAME", "/data/client_name"),
        ("STATUS", "/status"),
        ("ROLES", "/roles"),
        ("LAST ACCESS", "/last_access_at"),
    ],
};
pub const INSTANCE: Kind = Kind {
    element: "instance",
    id: "id",
    columns: &[
        ("ID", "/id"),
        ("NAME", "/name"),
        ("STATE", "/state"),
        ("CPU", "/cpu"),
        ("MEMORY MIB", "/memoryMiB"),
        ("DISK GIB", "/diskGiB"),
        ("IMAGE", "/image"),
    ],
};
pub const TASK: Kind = Kind {
    element: "task",
    id: "taskId",
    columns: &[
        ("TASK ID", "/taskId"),
        ("STATUS", "/taskStatus"),
        ("OPERATION", "/operation"),
        ("RESOURCE", "/resourceId"),
        ("PROGRESS", "/progress"),
        ("CREATED", "/createdAt"),
    ],
};
pub const AUDIT_EVENT: Kind = Kind {
    element: "auditEvent",
    id: "id",
    columns: &[
        ("TIME", "/occurredAt"),
        ("ACTOR", "/actorName"),
        ("ACTION", "/action"),
        ("TARGET", "/targetId"),
        ("OUTCOME", "/outcome"),
        ("STATUS", "/status"),
    ],
};
pub const DATACENTER: Kind = Kind {
    element: "datacenter",
    id: "id",
    columns: &[
        ("ID", "/id"),
        ("NAME", "/name"),
        ("URL", "/serverUrl"),
        ("LOCAL", "/local"),
    ],
};
pub const IMAGE: Kind = Kind {
    element: "image",
    id: "name",
    columns: &[
        ("NAME", "/name"),
        ("FORMAT", "/format"),
        ("SIZE BYTES", "/sizeBytes"),
    ],
};
/// Objects printed only one at a time (`me`, a quota, a setup result).
pub const OBJECT: Kind = Kind {
    element: "item",
    id: "id",
    columns: &[],
};

/// How this invocation prints.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
    pub quiet: bool,
}

impl Output {
    /// `-o` if given; otherwise a table on a terminal and JSON in a pipe.
    #[must_use]
    pub fn new(format: Option<Format>, quiet: bool) -> Output {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        Output {
            format: format.unwrap_or(if terminal {
                Format::Table
            } else {
                Format::Json
            }),
            quiet,
        }
    }

    /// Prints one resource.
    pub fn item(&self, value: &Value, kind: &Kind) -> Result<(), Failure> {
        if self.quiet {
            if let Some(id) = value.get(kind.id).and_then(Value::as_str) {
                write_line(id);
            }
            return Ok(());
        }
        let text = match self.format {
            Format::Table => object_table(value),
            _ => self.document(value, kind)?,
        };
        write_line(text.trim_end());
        Ok(())
    }

    /// Prints a list of resources.
    pub fn list(&self, items: &[Value], kind: &Kind) -> Result<(), Failure> {
        if self.quiet {
            for item in items {
                if let Some(id) = item.get(kind.id).and_then(Value::as_str) {
                    write_line(id);
                }
            }
            return Ok(());
        }
        let text = match self.format {
            Format::Table => list_table(items, kind),
            _ => self.document(&Value::Array(items.to_vec()), kind)?,
        };
        write_line(text.trim_end());
        Ok(())
    }

    /// JSON and YAML print the resource (or the array) itself; XML prints
    /// the document the server sends for `.xml`, `<response><data>…`.
    fn document(&self, value: &Value, kind: &Kind) -> Result<String, Failure> {
        let encode = |e: String| Failure::new(Exit::Error, format!("cannot print: {e}"));
        Ok(match self.format {
            Format::Json => {
                serde_json::to_string_pretty(value).map_err(|e| encode(e.to_string()))?
            }
            Format::Yaml => yaml_serde::to_string(value).map_err(|e| encode(e.to_string()))?,
            Format::Xml => nephele_http::xml::to_xml(&json!({ "data": value }), Some(kind.element)),
            Format::Table => object_table(value),
        })
    }
}

/// A cell: strings bare, lists joined, nothing as `-`.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.is_empty() => "-".into(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| cell(Some(i)))
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    }
}

fn table() -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table
}

fn list_table(items: &[Value], kind: &Kind) -> String {
    let mut t = table();
    t.set_header(kind.columns.iter().map(|(header, _)| *header));
    for item in items {
        t.add_row(
            kind.columns
                .iter()
                .map(|(_, pointer)| cell(item.pointer(pointer))),
        );
    }
    t.to_string()
}

/// One field per row; nested objects inline as JSON.
fn object_table(value: &Value) -> String {
    let Value::Object(map) = value else {
        return cell(Some(value));
    };
    let mut t = table();
    for (key, field) in map {
        t.add_row(vec![key.clone(), nested_cell(field)]);
    }
    t.to_string()
}

/// A field of one resource, read as a person reads it: an object (a
/// task's `result`) one `key: value` line each, a list of objects (a
/// task's `steps`) one line per item.
fn nested_cell(field: &Value) -> String {
    match field {
        Value::Object(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| match v {
                Value::Object(_) => format!("{k}: {v}"),
                _ => format!("{k}: {}", cell(Some(v))),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Array(items) if items.iter().any(Value::is_object) => {
            items.iter().map(item_line).collect::<Vec<_>>().join("\n")
        }
        _ => cell(Some(field)),
    }
}

fn item_line(item: &Value) -> String {
    // A task's step: "do create machine: done".
    let text = |k: &str| item.get(k).and_then(Value::as_str);
    if let (Some(action), Some(name), Some(outcome)) =
        (text("action"), text("name"), text("outcome"))
    {
        let detail = text("detail")
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return format!("{action} {name}: {outcome}{detail}");
    }
    match item {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", cell(Some(v))))
            .collect::<Vec<_>>()
            .join(", "),
        other => cell(Some(other)),
    }
}

/// Writes a line of a command's output. A reader that stopped reading
/// (`| head`) ends the command quietly, as it ends any Unix filter;
/// `println!` would panic.
pub fn write_line(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_a_person_expects() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&json!(null))), "-");
        assert_eq!(cell(Some(&json!(["a", "b"]))), "a, b");
        assert_eq!(cell(Some(&json!(2))), "2");
        assert_eq!(cell(Some(&json!("x"))), "x");
    }

    #[test]
    fn a_tasks_steps_and_result_read_one_per_line() {
        let task = json!({
            "taskId": "t1",
            "taskStatus": "FAILED",
            "result": {"id": "i1", "state": "Error"},
            "steps": [
                {"name": "create machine", "action": "do", "outcome": "done", "detail": null},
                {"name": "boot", "action": "do", "outcome": "failed", "detail": "no disk"},
                {"name": "create machine", "action": "undo", "outcome": "done", "detail": null},
            ],
        });
        let text = object_table(&task);
        for line in [
            "do create machine: done",
            "do boot: failed (no disk)",
            "undo create machine: done",
            "id: i1",
            "state: Error",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(!text.contains('{'), "no JSON in\n{text}");
    }

    #[test]
    fn a_list_table_has_the_kinds_columns() {
        let text = list_table(
            &[
                json!({"id":"i1","name":"web","state":"Running","cpu":2,"memoryMiB":1024,"diskGiB":10,"image":"alpine-3.20"}),
            ],
            &INSTANCE,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("STATE") && lines[0].contains("MEMORY MIB"));
        assert!(lines[1].contains("Running") && lines[1].contains("alpine-3.20"));
    }

    #[test]
    fn xml_is_the_servers_list_document() {
        let out = Output {
            format: Format::Xml,
            quiet: false,
        };
        let xml = out
            .document(&json!([{"id": "r1", "name": "a"}]), &ROLE)
            .unwrap_or_default();
        assert!(xml.contains("<response><data><role><id>r1</id>"), "{xml}");
    }
}
