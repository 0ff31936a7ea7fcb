//! Reading a config: a walk over the TOML document against the known schema,
//! collecting every problem (unknown keys with suggestions, wrong types, bad
//! values, duplicates) with its line, then building the typed [`Config`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Document, Item, TableLike, Value};

use crate::model::{
    Config, FetchAllow, HookConfig, PolicyConfig, RepositoryConfig, Role, ServerConfig, UserConfig,
    WebhookConfig, EVENT_TYPES,
};
use crate::names;
use crate::problem::{ConfigError, Problem};

const TOP_KEYS: &[&str] = &["server", "repository", "policy", "user", "hook", "webhook"];
const SERVER_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "max_git_processes",
    "queue_timeout_secs",
    "request_timeout_secs",
    "max_request_bytes",
    "max_push_bytes",
    "body_timeout_secs",
    "write_timeout_secs",
    "max_connections",
    "max_connections_per_client",
    "max_buffered_request_bytes",
    "anonymous_git_share",
    "max_anonymous_git_per_client",
    "git",
    "public_url",
    "fetch_allow",
    "fetch_timeout_secs",
];
const REPOSITORY_KEYS: &[&str] = &[
    "name",
    "branch",
    "directory",
    "deployment",
    "published_anonymous",
    "upstream",
    "upstream_credentials",
];
const POLICY_KEYS: &[&str] = &["self_approval"];
const HOOK_KEYS: &[&str] = &["user_variable"];
const USER_KEYS: &[&str] = &["name", "token_sha256", "roles", "repositories"];
const WEBHOOK_KEYS: &[&str] = &["url", "events", "repositories", "secret", "ca_file"];

impl Config {
    /// Read and validate a file. A relative `server.data_dir` is resolved
    /// against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![Problem {
                origin: origin.clone(),
                line: None,
                column: None,
                key: None,
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut config = Config::parse(&text, &origin, base)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Validate `text`; `origin` names it in messages and `base_dir` resolves
    /// a relative `data_dir`.
    pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut walk = Walk {
            origin,
            text,
            problems: Vec::new(),
        };
        let document = match Document::parse(text) {
            Ok(d) => d,
            Err(e) => {
                let span = e.span();
                walk.problem(span, None, format!("not valid TOML: {}", e.message()));
                return Err(walk.finish());
            }
        };
        let root = document.as_table();
        walk.unknown_keys(root, "", TOP_KEYS);
        let server = walk.server(root.get("server"), base_dir);
        let policy = walk.policy(root.get("policy"));
        let hook = walk.hook(root.get("hook"));
        let repositories = walk.repositories(root.get("repository"));
        let users = walk.users(root.get("user"));
        let webhooks = walk.webhooks(root.get("webhook"), &repositories);
        if walk.problems.is_empty() {
            Ok(Config {
                source: None,
                server,
                repositories,
                policy,
                hook,
                users,
                webhooks,
            })
        } else {
            Err(walk.finish())
        }
    }
}

/// The walk's state: where the text came from and what is wrong so far.
struct Walk<'a> {
    origin: &'a str,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Walk<'_> {
    fn finish(mut self) -> ConfigError {
        self.problems.sort_by_key(|p| (p.line, p.column));
        ConfigError {
            problems: self.problems,
        }
    }

    fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        (line, column)
    }

    fn problem(&mut self, span: Option<Range<usize>>, key: Option<String>, message: String) {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = self.line_column(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        self.problems.push(Problem {
            origin: self.origin.to_string(),
            line,
            column,
            key,
            message,
        });
    }

    fn line_of(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|s| self.line_column(s.start).0)
    }

    /// Report every key of `table` that is not in `known`.
    fn unknown_keys(&mut self, table: &dyn TableLike, path: &str, known: &[&str]) {
        for (key, _) in table.iter() {
            if known.contains(&key) {
                continue;
            }
            let span = table.key(key).and_then(|k| k.span());
            let suggestion = known
                .iter()
                .filter(|k| edit_distance(k, key) <= 2)
                .min_by_key(|k| edit_distance(k, key))
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| format!("; expected one of: {}", known.join(", ")));
            self.problem(
                span,
                Some(join(path, key)),
                format!("unknown key{suggestion}"),
            );
        }
    }

    fn server(&mut self, item: Option<&Item>, base_dir: &Path) -> ServerConfig {
        let mut server = ServerConfig::default();
        let Some(table) = self.section(item, "server") else {
            server.data_dir = base_dir.join(&server.data_dir);
            return server;
        };
        self.unknown_keys(table, "server", SERVER_KEYS);
        let mut s = Fields {
            walk: self,
            table,
            path: "server".into(),
        };
        if let Some((listen, span)) = s.string("listen") {
            match listen.parse::<SocketAddr>() {
                Ok(addr) => server.listen = addr,
                Err(_) => s.bad(span, "listen", format!("{listen:?} is not an address like 127.0.0.1:8080 or [::1]:8080 (host names are not resolved)")),
            }
        }
        if let Some((dir, span)) = s.string("data_dir") {
            if dir.is_empty() {
                s.bad(span, "data_dir", "must not be empty".into());
            }
            server.data_dir = PathBuf::from(dir);
        }
        if let Some(n) = s.integer("max_git_processes", 1, 4096) {
            server.max_git_processes = n as usize;
        }
        if let Some(n) = s.integer("queue_timeout_secs", 0, 3600) {
            server.queue_timeout_secs = n;
        }
        if let Some(n) = s.integer("request_timeout_secs", 1, 7 * 24 * 3600) {
            server.request_timeout_secs = n;
        }
        if let Some(n) = s.integer("max_request_bytes", 1024, u64::MAX >> 1) {
            server.max_request_bytes = n;
        }
        if let Some(n) = s.integer("max_push_bytes", 1024, u64::MAX >> 1) {
            server.max_push_bytes = n;
        }
        if let Some(n) = s.integer("body_timeout_secs", 1, 3600) {
            server.body_timeout_secs = n;
        }
        if let Some(n) = s.integer("write_timeout_secs", 1, 3600) {
            server.write_timeout_secs = n;
        }
        if let Some(n) = s.integer("max_connections", 1, 1 << 20) {
            server.max_connections = n as usize;
        }
        if let Some(n) = s.integer("max_connections_per_client", 1, 1 << 20) {
            server.max_connections_per_client = n as usize;
        }
        if let Some(n) = s.integer("max_buffered_request_bytes", 1 << 20, 1 << 40) {
            server.max_buffered_request_bytes = n;
        }
        if let Some(n) = s.integer("anonymous_git_share", 1, 100) {
            server.anonymous_git_share = n;
        }
        if let Some(n) = s.integer("max_anonymous_git_per_client", 1, 4096) {
            server.max_anonymous_git_per_client = n as usize;
        }
        if let Some((git, span)) = s.string("git") {
            if git.is_empty() {
                s.bad(span, "git", "must not be empty".into());
            }
            server.git = PathBuf::from(git);
        }
        if let Some((url, span)) = s.string("public_url") {
            let has_host = ["http://", "https://"].iter().any(|scheme| {
                url.strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            });
            if has_host && !url.contains('@') {
                server.public_url = Some(url.trim_end_matches('/').to_string());
            } else {
                s.bad(
                    span,
                    "public_url",
                    format!("{url:?} is not an http:// or https:// URL with a host (and no credentials)"),
                );
            }
        }
        if let Some((entries, _)) = s.string_array("fetch_allow") {
            for (entry, span) in entries {
                match FetchAllow::parse(&entry) {
                    Ok(allow) => server.fetch_allow.push(allow),
                    Err(message) => s.bad(span, "fetch_allow", message),
                }
            }
        }
        if let Some(n) = s.integer("fetch_timeout_secs", 1, 3600) {
            server.fetch_timeout_secs = n;
        }
        if server.data_dir.is_relative() {
            server.data_dir = base_dir.join(&server.data_dir);
        }
        server
    }

    fn policy(&mut self, item: Option<&Item>) -> PolicyConfig {
        let mut policy = PolicyConfig::default();
        if let Some(table) = self.section(item, "policy") {
            self.unknown_keys(table, "policy", POLICY_KEYS);
            let mut f = Fields {
                walk: self,
                table,
                path: "policy".into(),
            };
            if let Some(b) = f.boolean("self_approval") {
                policy.self_approval = b;
            }
        }
        policy
    }

    fn hook(&mut self, item: Option<&Item>) -> HookConfig {
        let mut hook = HookConfig::default();
        if let Some(table) = self.section(item, "hook") {
            self.unknown_keys(table, "hook", HOOK_KEYS);
            let mut f = Fields {
                walk: self,
                table,
                path: "hook".into(),
            };
            if let Some((variable, span)) = f.string("user_variable") {
                let valid = variable
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && variable
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    f.bad(
                        span,
                        "user_variable",
                        format!(
                            "{variable:?} is not an environment variable name (letters, digits, _)"
                        ),
                    );
                }
                hook.user_variable = Some(variable);
            }
        }
        hook
    }

    fn repositories(&mut self, item: Option<&Item>) -> Vec<RepositoryConfig> {
        let tables = self.array_of_tables(item, "repository");
        if item.is_none() {
            self.problem(None, Some("repository".into()), "no [[repository]] is configured; add at least one, e.g.\n  [[repository]]\n  name = \"blueprints\"".into());
        }
        let mut seen: HashMap<String, Option<usize>> = HashMap::new();
        let mut out = Vec::new();
        for (i, table) in tables.into_iter().enumerate() {
            let path = format!("repository[{i}]");
            self.unknown_keys(table, &path, REPOSITORY_KEYS);
            let mut f = Fields {
                walk: self,
                table,
                path: path.clone(),
            };
            let Some((name, name_span)) = f.required_string("name", table_span(table)) else {
                continue;
            };
            let mut repo = RepositoryConfig::named(&name);
            if let Err(e) = names::validate_repository_name(&name) {
                f.bad(name_span.clone(), "name", e);
            }
            if let Some((branch, span)) = f.string("branch") {
                if let Err(e) = names::validate_branch(&branch) {
                    f.bad(span, "branch", e);
                }
                repo.branch = branch;
            }
            if let Some((directory, span)) = f.string("directory") {
                match names::normalize_directory(&directory) {
                    Ok(d) => repo.directory = d,
                    Err(e) => f.bad(span, "directory", e),
                }
            }
            if let Some(b) = f.boolean("deployment") {
                repo.deployment = b;
            }
            if let Some(b) = f.boolean("published_anonymous") {
                repo.published_anonymous = b;
            }
            if let Some((upstream, span)) = f.string("upstream") {
                let known = ["http://", "https://", "file://", "ssh://"];
                if !known
                    .iter()
                    .any(|p| upstream.starts_with(p) && upstream.len() > p.len())
                {
                    f.bad(span, "upstream", format!("{upstream:?} is not a Git URL starting with http://, https://, file:// or ssh://"));
                }
                repo.upstream = Some(upstream);
            }
            if let Some((credentials, span)) = f.string("upstream_credentials") {
                let ok = ["env:", "file:"]
                    .iter()
                    .any(|p| credentials.starts_with(p) && credentials.len() > p.len());
                if !ok {
                    f.bad(span, "upstream_credentials", "must be \"env:VARIABLE\" or \"file:/path\" naming where `user:token` for the upstream is kept (never the secret itself)".to_string());
                }
                repo.upstream_credentials = Some(credentials);
            }
            let line = self.line_of(name_span.clone());
            match seen.get(&name) {
                Some(first) => {
                    let at = first.map(|l| format!(" on line {l}")).unwrap_or_default();
                    self.problem(
                        name_span,
                        Some(format!("{path}.name")),
                        format!("repository {name:?} is already defined{at}; names must be unique"),
                    );
                }
                None => {
                    seen.insert(name.clone(), line);
                }
            }
            out.push(repo);
        }
        out
    }

    fn users(&mut self, item: Option<&Item>) -> Vec<UserConfig> {
        let tables = self.array_of_tables(item, "user");
        let mut seen: HashMap<String, Option<usize>> = HashMap::new();
        let mut out = Vec::new();
        for (i, table) in tables.into_iter().enumerate() {
            let path = format!("user[{i}]");
            self.unknown_keys(table, &path, USER_KEYS);
            let mut f = Fields {
                walk: self,
                table,
                path: path.clone(),
            };
            let name = f.required_string("name", table_span(table));
            let token = f.required_string("token_sha256", table_span(table));
            let roles_item = f.string_array("roles");
            let patterns = f.string_array("repositories");
            let Some((name, name_span)) = name else {
                continue;
            };
            if let Err(e) = names::validate_user_name(&name) {
                f.bad(name_span.clone(), "name", e);
            }
            let digest = token.and_then(|(hex_text, span)| {
                let mut digest = [0u8; 32];
                match hex::decode_to_slice(hex_text.trim(), &mut digest) {
                    Ok(()) => Some(digest),
                    Err(_) => {
                        f.bad(span, "token_sha256", format!("must be 64 hex characters (the SHA-256 of the token), found {} characters; run `cadgate token` to make a token and this line", hex_text.len()));
                        None
                    }
                }
            });
            let mut roles = Vec::new();
            match roles_item {
                None => f.bad(
                    table_span(table),
                    "roles",
                    "is missing; give at least one of reader, author, approver, admin".into(),
                ),
                Some((values, span)) => {
                    if values.is_empty() {
                        f.bad(
                            span.clone(),
                            "roles",
                            "is empty; give at least one of reader, author, approver, admin".into(),
                        );
                    }
                    for (value, span) in values {
                        match Role::parse(&value) {
                            Some(role) => roles.push(role),
                            None => f.bad(span, "roles", format!("unknown role {value:?}; roles are reader, author, approver, admin")),
                        }
                    }
                }
            }
            let mut repositories = vec!["*".to_string()];
            if let Some((values, _)) = patterns {
                repositories = Vec::new();
                for (pattern, span) in values {
                    match crate::model::compile_glob(&pattern) {
                        Ok(_) => repositories.push(pattern),
                        Err(e) => f.bad(span, "repositories", e),
                    }
                }
            }
            let line = self.line_of(name_span.clone());
            if let Some(first) = seen.get(&name) {
                let at = first.map(|l| format!(" on line {l}")).unwrap_or_default();
                self.problem(
                    name_span.clone(),
                    Some(format!("{path}.name")),
                    format!("user {name:?} is already defined{at}; names must be unique"),
                );
            } else {
                seen.insert(name.clone(), line);
            }
            if let Some(digest) = digest {
                match UserConfig::new(&name, digest, roles, repositories) {
                    Ok(user) => out.push(user),
                    Err(e) => self.problem(name_span, Some(format!("{path}.repositories")), e),
                }
            }
        }
        out
    }

    fn webhooks(
        &mut self,
        item: Option<&Item>,
        repositories: &[RepositoryConfig],
    ) -> Vec<WebhookConfig> {
        let tables = self.array_of_tables(item, "webhook");
        let mut out = Vec::new();
        for (i, table) in tables.into_iter().enumerate() {
            let path = format!("webhook[{i}]");
            self.unknown_keys(table, &path, WEBHOOK_KEYS);
            let mut f = Fields {
                walk: self,
                table,
                path: path.clone(),
            };
            let url = f.required_string("url", table_span(table));
            let events_item = f.string_array("events");
            let patterns = f.string_array("repositories");
            let secret = f.string("secret");
            let ca_file = f.string("ca_file");
            let Some((url, url_span)) = url else {
                continue;
            };
            if !["http://", "https://"].iter().any(|scheme| {
                url.strip_prefix(scheme)
                    .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            }) {
                f.bad(
                    url_span.clone(),
                    "url",
                    format!("{url:?} is not an http:// or https:// URL with a host"),
                );
            }
            let mut ca = None;
            if let Some((file, span)) = ca_file {
                if !url.starts_with("https://") {
                    f.bad(span, "ca_file", "is only for an https:// url".to_string());
                } else if !std::path::Path::new(&file).is_file() {
                    f.bad(
                        span,
                        "ca_file",
                        format!("{file:?} is not a readable file of PEM certificates"),
                    );
                } else {
                    ca = Some(std::path::PathBuf::from(file));
                }
            }
            let mut events = Vec::new();
            if let Some((values, span)) = events_item {
                if values.is_empty() {
                    f.bad(
                        span,
                        "events",
                        format!(
                            "is empty; leave it out to deliver every event, or give some of: {}",
                            EVENT_TYPES.join(", ")
                        ),
                    );
                }
                for (value, span) in values {
                    if EVENT_TYPES.contains(&value.as_str()) {
                        events.push(value);
                    } else {
                        f.bad(
                            span,
                            "events",
                            format!(
                                "unknown event type {value:?}; event types are {}",
                                EVENT_TYPES.join(", ")
                            ),
                        );
                    }
                }
            }
            let mut globs = vec!["*".to_string()];
            if let Some((values, _)) = patterns {
                globs = Vec::new();
                for (pattern, span) in values {
                    let is_glob = pattern.contains(['*', '?', '[', '{']);
                    if !is_glob && !repositories.iter().any(|r| r.name == pattern) {
                        f.bad(
                            span,
                            "repositories",
                            format!("no [[repository]] is named {pattern:?}"),
                        );
                        continue;
                    }
                    match crate::model::compile_glob(&pattern) {
                        Ok(_) => globs.push(pattern),
                        Err(e) => f.bad(span, "repositories", e),
                    }
                }
            }
            let mut secret_spec = None;
            if let Some((spec, span)) = secret {
                let ok = ["env:", "file:"]
                    .iter()
                    .any(|p| spec.starts_with(p) && spec.len() > p.len());
                if ok {
                    secret_spec = Some(spec);
                } else {
                    f.bad(span, "secret", "must be \"env:VARIABLE\" or \"file:/path\" naming where the signing secret is kept (never the secret itself)".to_string());
                }
            }
            match WebhookConfig::new(&url, events, globs, secret_spec) {
                Ok(mut webhook) => {
                    webhook.ca_file = ca;
                    out.push(webhook)
                }
                Err(e) => self.problem(url_span, Some(format!("{path}.repositories")), e),
            }
        }
        out
    }

    /// A `[section]` (or inline table) as a table, reporting a wrong type.
    fn section<'d>(&mut self, item: Option<&'d Item>, key: &str) -> Option<&'d dyn TableLike> {
        let item = item?;
        match item.as_table_like() {
            Some(t) => Some(t),
            None => {
                self.problem(
                    item.span(),
                    Some(key.into()),
                    format!("must be a table: write it as [{key}]"),
                );
                None
            }
        }
    }

    /// A `[[section]]` as a list of tables, reporting a wrong type.
    fn array_of_tables<'d>(&mut self, item: Option<&'d Item>, key: &str) -> Vec<&'d dyn TableLike> {
        let Some(item) = item else { return Vec::new() };
        if let Some(array) = item.as_array_of_tables() {
            return array.iter().map(|t| t as &dyn TableLike).collect();
        }
        if let Some(array) = item.as_array() {
            let tables: Option<Vec<&dyn TableLike>> = array
                .iter()
                .map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
                .collect();
            if let Some(tables) = tables {
                return tables;
            }
        }
        self.problem(
            item.span(),
            Some(key.into()),
            format!("must be a list of tables: write each as [[{key}]]"),
        );
        Vec::new()
    }
}

fn table_span(table: &dyn TableLike) -> Option<Range<usize>> {
    table
        .iter()
        .find_map(|(k, _)| table.key(k).and_then(|key| key.span()))
}

/// Typed access to one table's fields, reporting wrong types.
struct Fields<'w, 'a, 'd> {
    walk: &'w mut Walk<'a>,
    table: &'d dyn TableLike,
    path: String,
}

impl Fields<'_, '_, '_> {
    fn bad(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        let key = join(&self.path, key);
        self.walk.problem(span, Some(key), message);
    }

    fn value(&mut self, key: &str, expected: &str) -> Option<(&Value, Option<Range<usize>>)> {
        let item = self.table.get(key)?;
        let span = item
            .span()
            .or_else(|| self.table.key(key).and_then(|k| k.span()));
        match item.as_value() {
            Some(v) => Some((v, span)),
            None => {
                self.bad(span, key, format!("must be {expected}"));
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> Option<(String, Option<Range<usize>>)> {
        let (value, span) = self.value(key, "a string")?;
        match value.as_str() {
            Some(s) => Some((s.to_string(), span)),
            None => {
                self.bad(span, key, "must be a string (in quotes)".into());
                None
            }
        }
    }

    fn required_string(
        &mut self,
        key: &str,
        table_span: Option<Range<usize>>,
    ) -> Option<(String, Option<Range<usize>>)> {
        if self.table.get(key).is_none() {
            self.bad(table_span, key, "is required".into());
            return None;
        }
        self.string(key)
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        let (value, span) = self.value(key, "true or false")?;
        match value.as_bool() {
            Some(b) => Some(b),
            None => {
                self.bad(span, key, "must be true or false".into());
                None
            }
        }
    }

    fn integer(&mut self, key: &str, min: u64, max: u64) -> Option<u64> {
        let (value, span) = self.value(key, "a whole number")?;
        match value.as_integer().and_then(|i| u64::try_from(i).ok()) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.bad(
                    span,
                    key,
                    format!("must be a whole number from {min} to {max}"),
                );
                None
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn string_array(
        &mut self,
        key: &str,
    ) -> Option<(Vec<(String, Option<Range<usize>>)>, Option<Range<usize>>)> {
        let (value, span) = self.value(key, "a list of strings")?;
        let Some(array) = value.as_array() else {
            self.bad(
                span,
                key,
                "must be a list of strings, e.g. [\"reader\"]".into(),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for v in array.iter() {
            match v.as_str() {
                Some(s) => out.push((s.to_string(), v.span())),
                None => problems.push(v.span()),
            }
        }
        for p in problems {
            self.bad(p, key, "every item must be a string (in quotes)".into());
        }
        Some((out, span))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(row[j + 1])
            };
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("listen", "lisen"), 1);
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

#[cfg(test)]
mod fetch_allow_tests {
    use std::path::Path;

    use crate::model::{Config, FetchAllow};

    fn parse(text: &str) -> Result<Config, String> {
        let text = format!("{text}\n[[repository]]\nname = \"blueprints\"\n");
        Config::parse(&text, "test.toml", Path::new("/tmp")).map_err(|e| e.to_string())
    }

    #[test]
    fn fetch_allow_reads_networks_and_hosts() {
        let config = parse(
            "[server]\nfetch_allow = [\"10.0.0.0/8\", \"::1/128\", \"127.0.0.1\", \"Git.Internal:443\", \"mirror\"]\nfetch_timeout_secs = 5\n",
        )
        .expect("valid");
        let allow = &config.server.fetch_allow;
        assert_eq!(allow.len(), 5);
        assert_eq!(config.server.fetch_timeout_secs, 5);
        let ip = |s: &str| s.parse().expect("ip");
        assert!(allow[0].allows("x", 80, ip("10.1.2.3")));
        assert!(!allow[0].allows("x", 80, ip("11.1.2.3")));
        assert!(allow[1].allows("x", 80, ip("::1")));
        assert!(!allow[1].allows("x", 80, ip("127.0.0.1")));
        assert!(allow[2].allows("x", 1, ip("127.0.0.1")));
        assert!(!allow[2].allows("x", 1, ip("127.0.0.2")));
        assert!(allow[3].allows("git.internal", 443, ip("10.0.0.1")));
        assert!(!allow[3].allows("git.internal", 80, ip("10.0.0.1")));
        assert!(allow[4].allows("MIRROR", 8080, ip("192.168.1.1")));
        assert_eq!(
            FetchAllow::parse("0.0.0.0/0"),
            Ok(FetchAllow::Network {
                address: ip("0.0.0.0"),
                prefix: 0
            })
        );
        assert!(FetchAllow::parse("0.0.0.0/0")
            .expect("any")
            .allows("x", 1, ip("8.8.8.8")));
    }

    #[test]
    fn bad_fetch_allow_entries_are_reported_with_their_line() {
        for bad in [
            "10.0.0.0/33",
            "::1/129",
            "10.0.0/8",
            "host:99999",
            "-host",
            "a b",
            "",
            "http://x",
        ] {
            let error = parse(&format!("[server]\nfetch_allow = [{bad:?}]\n")).expect_err(bad);
            assert!(
                error.contains("fetch_allow") && error.contains(":2"),
                "{bad}: {error}"
            );
        }
        let error = parse("[server]\nfetch_timeout_secs = 0\n").expect_err("zero");
        assert!(error.contains("fetch_timeout_secs"), "{error}");
    }
}
