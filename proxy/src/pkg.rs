//! `cadgate pkg`: package revisions for people who prefer commands to
//! refspecs, as a client of the server's JSON API (docs/api.md).
//!
//! Exit codes: 0 done; 1 the server refused (the message says why);
//! 2 bad usage; 3 the server could not be reached or failed.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Where the server is and who is asking.
#[derive(Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(
        long,
        env = "CADGATE_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// The user name.
    #[arg(long, env = "CADGATE_USER", global = true)]
    user: Option<String>,
    /// The token (prefer the environment variable to a command-line flag).
    #[arg(long, env = "CADGATE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

/// What to do.
#[derive(Subcommand)]
pub enum PkgCommand {
    /// List package revisions of a repository.
    List {
        repository: String,
        /// Only this package (its path F).
        #[arg(long)]
        package: Option<String>,
        /// Only Draft, Proposed, Published or DeletionProposed.
        #[arg(long)]
        lifecycle: Option<String>,
    },
    /// Show one package revision.
    Get { repository: String, name: String },
    /// Start a new, empty package (like `kpt pkg init`).
    Init {
        repository: String,
        package: String,
        workspace: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Start a new package from a published upstream revision.
    Clone {
        repository: String,
        package: String,
        workspace: String,
        /// A registered repository's package: REPOSITORY/PACKAGE[@N] (latest without @N).
        #[arg(long, value_name = "REPOSITORY/PACKAGE[@N]", conflicts_with = "git")]
        from: Option<String>,
        /// A Git URL (with --ref and --directory).
        #[arg(long, requires_all = ["git_ref", "directory"])]
        git: Option<String>,
        /// The ref to clone from the Git URL, e.g. basens/v2.
        #[arg(long = "ref", id = "git_ref")]
        git_ref: Option<String>,
        /// The package directory in the Git URL's repository.
        #[arg(long)]
        directory: Option<String>,
    },
    /// Start a new draft of a package from one of its published revisions.
    Copy {
        repository: String,
        package: String,
        workspace: String,
        /// The revision to copy (the latest without it).
        #[arg(long)]
        revision: Option<u64>,
    },
    /// Start a draft that moves a cloned package to a newer upstream revision.
    Upgrade {
        repository: String,
        package: String,
        workspace: String,
        /// The upstream revision (the latest without it).
        #[arg(long)]
        revision: Option<u64>,
    },
    /// Propose a draft for publishing.
    Propose { repository: String, name: String },
    /// Send a proposal back to draft.
    Reject { repository: String, name: String },
    /// Publish a proposal (it gets the next revision number).
    Approve { repository: String, name: String },
    /// Propose deleting a published revision.
    ProposeDelete { repository: String, name: String },
    /// Keep a revision whose deletion was proposed.
    RejectDelete { repository: String, name: String },
    /// Delete a draft or proposal, or approve a proposed deletion.
    Delete { repository: String, name: String },
    /// List packages whose registered upstream has a newer revision.
    Behind {
        /// Only this repository.
        #[arg(long)]
        repository: Option<String>,
    },
}

/// Run `cadgate pkg …`.
pub fn run(connection: &Connection, command: PkgCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let (status, body) = match &command {
        PkgCommand::List {
            repository,
            package,
            lifecycle,
        } => {
            let mut query = Vec::new();
            if let Some(p) = package {
                query.push(format!("package={}", encode(p)));
            }
            if let Some(l) = lifecycle {
                query.push(format!("lifecycle={}", encode(l)));
            }
            client.get(&format!(
                "/api/v1/repositories/{}/revisions?{}",
                encode(repository),
                query.join("&")
            ))?
        }
        PkgCommand::Get { repository, name } => client.get(&format!(
            "/api/v1/repositories/{}/revisions/{}",
            encode(repository),
            encode(name)
        ))?,
        PkgCommand::Behind { repository } => client.get(&match repository {
            Some(r) => format!("/api/v1/behind?repository={}", encode(r)),
            None => "/api/v1/behind".into(),
        })?,
        PkgCommand::Init {
            repository,
            package,
            workspace,
            description,
        } => client.create(
            repository,
            package,
            workspace,
            "init",
            json!({ "description": description }),
        )?,
        PkgCommand::Clone {
            repository,
            package,
            workspace,
            from,
            git,
            git_ref,
            directory,
        } => {
            let source = match (from, git) {
                (Some(from), None) => {
                    let (spec, revision) = match from.rsplit_once('@') {
                        Some((spec, n)) => (
                            spec,
                            Some(n.trim_start_matches('v').parse::<u64>().with_context(|| {
                                format!("--from {from}: the revision after @ is not a number")
                            })?),
                        ),
                        None => (from.as_str(), None),
                    };
                    let Some((source, package)) = spec.split_once('/') else {
                        bail!("--from {from}: write it as REPOSITORY/PACKAGE[@N]");
                    };
                    json!({ "repository": source, "packageName": package, "revision": revision })
                }
                (None, Some(url)) => {
                    json!({ "git": { "repo": url, "ref": git_ref, "directory": directory } })
                }
                _ => bail!(
                    "give --from REPOSITORY/PACKAGE[@N] or --git URL --ref REF --directory DIR"
                ),
            };
            client.create(repository, package, workspace, "clone", source)?
        }
        PkgCommand::Copy {
            repository,
            package,
            workspace,
            revision,
        } => client.create(
            repository,
            package,
            workspace,
            "copy",
            json!({ "revision": revision }),
        )?,
        PkgCommand::Upgrade {
            repository,
            package,
            workspace,
            revision,
        } => client.create(
            repository,
            package,
            workspace,
            "upgrade",
            json!({ "revision": revision }),
        )?,
        PkgCommand::Propose { repository, name }
        | PkgCommand::Reject { repository, name }
        | PkgCommand::Approve { repository, name }
        | PkgCommand::ProposeDelete { repository, name }
        | PkgCommand::RejectDelete { repository, name }
        | PkgCommand::Delete { repository, name } => {
            let action = match command {
                PkgCommand::Propose { .. } => "propose",
                PkgCommand::Reject { .. } => "reject",
                PkgCommand::Approve { .. } => "approve",
                PkgCommand::ProposeDelete { .. } => "propose-delete",
                PkgCommand::RejectDelete { .. } => "reject-delete",
                _ => "delete",
            };
            client.post(
                &format!(
                    "/api/v1/repositories/{}/revisions/{}/{action}",
                    encode(repository),
                    encode(name)
                ),
                "",
            )?
        }
    };
    if connection.json {
        println!("{body}");
    }
    if status >= 500 {
        eprintln!("cadgate: the server failed: {}", message(&body));
        return Ok(ExitCode::from(3));
    }
    if status >= 400 {
        eprintln!("cadgate: {}", message(&body));
        for conflict in body["conflicts"].as_array().into_iter().flatten() {
            eprintln!(
                "  {}{}{}: {}",
                conflict["path"].as_str().unwrap_or(""),
                conflict["resource"]
                    .as_str()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default(),
                conflict["field"]
                    .as_str()
                    .map(|f| format!(" {f}"))
                    .unwrap_or_default(),
                conflict["detail"].as_str().unwrap_or("")
            );
        }
        return Ok(ExitCode::from(1));
    }
    // What the lifecycle said about the change (e.g. "published web v1").
    for message in body["messages"].as_array().into_iter().flatten() {
        if let Some(text) = message.as_str() {
            eprintln!("cadgate: {text}");
        }
    }
    if !connection.json {
        match (&body["items"], &command) {
            (Value::Array(items), _) => print!("{}", table(items)),
            (_, PkgCommand::Get { .. }) => print!("{}", details(&body)),
            // A revision just made: one row.
            _ => print!("{}", table(std::slice::from_ref(&body))),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn message(body: &Value) -> String {
    body["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string())
}

/// Revisions as an aligned table.
fn table(items: &[Value]) -> String {
    let header = [
        "NAME",
        "PACKAGE",
        "WORKSPACE",
        "REVISION",
        "LIFECYCLE",
        "LATEST",
        "UPSTREAM",
    ];
    let rows: Vec<[String; 7]> = items
        .iter()
        .map(|r| {
            let upstream = &r["upstream"];
            let upstream = if upstream.is_object() {
                format!(
                    "{}/{} v{}{}",
                    upstream["repository"].as_str().unwrap_or(""),
                    upstream["packageName"].as_str().unwrap_or(""),
                    upstream["revision"],
                    if upstream["behind"] == true {
                        format!(" (v{} available)", upstream["latestRevision"])
                    } else {
                        String::new()
                    }
                )
            } else {
                String::new()
            };
            [
                text(&r["name"]),
                text(&r["packageName"]),
                text(&r["workspaceName"]),
                r["revision"].to_string(),
                text(&r["lifecycle"]),
                if r["latest"] == true {
                    "yes".into()
                } else {
                    String::new()
                },
                upstream,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// One revision as `key: value` lines.
fn details(r: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(map) = r {
        for (key, value) in map {
            let shown = match value {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            out.push_str(&format!("{key}: {shown}\n"));
        }
    }
    out
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The API over HTTP(S), with Basic credentials.
struct Client {
    agent: ureq::Agent,
    base: String,
    authorization: Option<String>,
}

impl Client {
    fn new(connection: &Connection) -> anyhow::Result<Self> {
        use base64::Engine as _;
        let authorization = match (&connection.user, &connection.token) {
            (Some(user), Some(token)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"))
            )),
            (None, None) => None,
            _ => bail!("give both the user and the token (CADGATE_USER and CADGATE_TOKEN, or --user and --token)"),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            agent,
            base: connection.server.trim_end_matches('/').to_string(),
            authorization,
        })
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(a) = &self.authorization {
            request = request.header("Authorization", a);
        }
        self.answer(request.call(), path)
    }

    fn post(&self, path: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json");
        if let Some(a) = &self.authorization {
            request = request.header("Authorization", a);
        }
        self.answer(request.send(body), path)
    }

    fn create(
        &self,
        repository: &str,
        package: &str,
        workspace: &str,
        how: &str,
        spec: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let mut body = json!({ "packageName": package, "workspaceName": workspace });
        body[how] = spec;
        let path = format!(
            "/api/v1/repositories/{}/revisions",
            form_urlencoded::byte_serialize(repository.as_bytes()).collect::<String>()
        );
        self.post(&path, &body.to_string())
    }

    fn answer(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        path: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                eprintln!(
                    "cadgate: cannot reach {}{path}: {e}; is the server running (set --server or CADGATE_SERVER)?",
                    self.base
                );
                std::process::exit(3);
            }
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the answer of {path}"))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| json!({ "error": text.trim() }))
        };
        Ok((status, value))
    }
}
