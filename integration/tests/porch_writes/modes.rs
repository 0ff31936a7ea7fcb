//! Where cadgate sits between Porch and its repository ([`Mode`]), started
//! for a test ([`Host`]), and how a scenario checks what a step left: every
//! branch and tag ([`Expected`]) and every ref of a push ([`accepted`],
//! [`refused`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

use cadgate_integration::apache::Apache;
use cadgate_integration::porch::Porch;
use cadgate_integration::*;

/// The repository Porch writes.
pub const REPO: &str = "r";

/// Where cadgate sits between Porch and the repository.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    /// Porch's Repository points at the cadgate server, which owns the
    /// repository.
    Server,
    /// Porch's Repository points at a Git host (Apache + git http-backend)
    /// whose repository has cadgate's hook installed.
    Hook,
    /// Porch's Repository points at cadgate, which forwards to a Git host's
    /// plain repository.
    Forward,
}

/// The users: Porch's service account, and a person pushing with git.
pub const USERS: [(&str, &str); 2] = [("porch", "approver"), ("dev", "author")];

/// Porch's service account is its own user; it proposes and approves its
/// own revisions, so the repository allows self-approval. `extra` goes into
/// the `[[repository]]` block.
pub fn config(extra: &str) -> String {
    let mut config = format!(
        "[policy]\nself_approval = true\n\n[[repository]]\nname = \"{REPO}\"\nbranch = \"main\"\n{extra}\n"
    );
    for (user, role) in USERS {
        config.push_str(&TestUser::new(user).config(&[role], &[]));
        config.push('\n');
    }
    config
}

/// A bare repository at `path` with an initial commit on `main`, as a Git
/// host would have it.
pub fn bare_repository(path: &std::path::Path) {
    let client = GitClient::new();
    client.git(&[
        "init",
        "-q",
        "--bare",
        "-b",
        "main",
        &path.display().to_string(),
    ]);
    client.git(&["init", "-q", "-b", "main", "seed"]);
    client.commit_files("seed", &[("README.md", b"hosted elsewhere\n")], "initial");
    client.git(&[
        "-C",
        "seed",
        "push",
        "-q",
        &path.display().to_string(),
        "main",
    ]);
}

/// cadgate guarding [`REPO`] in one [`Mode`].
pub struct Host {
    mode: Mode,
    server: Option<Server>,
    /// Forward mode's second cadgate replica in front of the same upstream.
    replica: Option<Server>,
    apache: Option<Apache>,
}

impl Host {
    pub fn start(mode: Mode) -> Self {
        match mode {
            Mode::Server => Self {
                mode,
                server: Some(Server::start(&config(""))),
                replica: None,
                apache: None,
            },
            Mode::Hook => Self::start_hook(""),
            Mode::Forward => {
                let apache = Apache::new();
                bare_repository(&apache.root().join(format!("{REPO}.git")));
                let forwarder = TestUser::new("cadgate-forwarder");
                let credentials = apache.scratch().join("upstream-credentials");
                std::fs::write(
                    &credentials,
                    format!("{}:{}\n", forwarder.name, forwarder.token),
                )
                .expect("credentials");
                apache.start(&[forwarder]);
                let config = config(&format!(
                    "upstream = \"{}/git/{REPO}.git\"\nupstream_credentials = \"file:{}\"\n",
                    apache.base(),
                    credentials.display()
                ));
                Self {
                    mode,
                    server: Some(Server::start(&config)),
                    replica: Some(Server::start(&config)),
                    apache: Some(apache),
                }
            }
        }
    }

    /// Hook mode, with `apache_extra` lines in the host's Apache
    /// configuration (its admin's own directives).
    pub fn start_hook(apache_extra: &str) -> Self {
        let apache = Apache::new();
        let scratch = apache.scratch();
        // The hook runs as Apache's user: give it its own copy of cadgate.
        let bin = scratch.join("cadgate");
        std::fs::copy(cadgate_bin(), &bin).expect("copy cadgate");
        let file = scratch.join("cadgate.toml");
        std::fs::write(&file, config("")).expect("config");
        let repo = apache.root().join(format!("{REPO}.git"));
        bare_repository(&repo);
        let out = std::process::Command::new(&bin)
            .args(["hook", "install", "--config"])
            .arg(&file)
            .args(["--repository", REPO])
            .arg(&repo)
            .output()
            .expect("run cadgate hook install");
        assert!(out.status.success(), "{}", stderr(&out));
        let users: Vec<TestUser> = USERS.iter().map(|(u, _)| TestUser::new(u)).collect();
        apache.start_with(&users, apache_extra);
        Self {
            mode: Mode::Hook,
            server: None,
            replica: None,
            apache: Some(apache),
        }
    }

    /// The Git host of hook and forward mode.
    pub fn apache(&self) -> &Apache {
        self.apache
            .as_ref()
            .expect("hook and forward mode have a Git host")
    }

    /// The URL `user` (and Porch's Repository) reaches the repository at.
    pub fn url_as(&self, user: &str) -> String {
        let user = TestUser::new(user);
        match (self.mode, &self.server, &self.apache) {
            (Mode::Hook, _, Some(apache)) => apache.url_as(&user, REPO),
            (_, Some(server), _) => server.url_as(&user, REPO),
            _ => unreachable!("a host is started with what its mode needs"),
        }
    }

    /// The repository that holds the refs: the server's own, the hosted one
    /// with the hook, or forward mode's upstream.
    pub fn repo(&self) -> PathBuf {
        match (self.mode, &self.server, &self.apache) {
            (Mode::Server, Some(server), _) => server.repo_dir(REPO),
            (_, _, Some(apache)) => apache.root().join(format!("{REPO}.git")),
            _ => unreachable!("a host is started with what its mode needs"),
        }
    }

    pub fn porch(&self) -> Porch {
        Porch::new(&self.url_as("porch"), "main")
    }

    /// Another Porch replica: in forward mode it reaches the upstream through
    /// a second cadgate replica, elsewhere through the same URL.
    pub fn porch_elsewhere(&self) -> Porch {
        match &self.replica {
            Some(replica) => Porch::new(&replica.url_as(&TestUser::new("porch"), REPO), "main"),
            None => self.porch(),
        }
    }

    /// Every branch and tag of the repository.
    pub fn refs(&self) -> BTreeMap<String, String> {
        server_git(
            &self.repo(),
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads",
                "refs/tags",
            ],
        )
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, id)| (name.to_string(), id.to_string()))
        .collect()
    }

    /// Every branch and tag as a client sees them through the mode's URL.
    pub fn advertised(&self) -> BTreeMap<String, String> {
        ls_remote(&self.url_as("porch"))
    }

    /// The branches and tags of the published view Config Sync reads: the
    /// server's `published/r` (also in forward mode), or the hook's
    /// `r.published` sibling on the host.
    pub fn published(&self) -> BTreeMap<String, String> {
        let user = TestUser::new("porch");
        match (self.mode, &self.server, &self.apache) {
            (Mode::Hook, _, Some(apache)) => {
                ls_remote(&apache.url_as(&user, &format!("{REPO}.published")))
            }
            (_, Some(server), _) => ls_remote(&server.url_as(&user, &format!("published/{REPO}"))),
            _ => unreachable!("a host is started with what its mode needs"),
        }
    }
}

/// The branches and tags `ls-remote url` lists (peeled tags left out).
pub fn ls_remote(url: &str) -> BTreeMap<String, String> {
    let out = GitClient::new().git(&["ls-remote", url]);
    stdout(&out)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(_, name)| {
            (name.starts_with("refs/heads/") || name.starts_with("refs/tags/"))
                && !name.ends_with("^{}")
        })
        .map(|(id, name)| (name.to_string(), id.to_string()))
        .collect()
}

/// What the repository's refs should be, step by step.
pub struct Expected<'h> {
    host: &'h Host,
    refs: BTreeMap<String, String>,
}

impl<'h> Expected<'h> {
    /// The refs as they are now.
    pub fn new(host: &'h Host) -> Self {
        Self {
            host,
            refs: host.refs(),
        }
    }

    pub fn set(&mut self, name: &str, id: &str) {
        self.refs.insert(name.to_string(), id.to_string());
    }

    pub fn remove(&mut self, name: &str) {
        self.refs.remove(name);
    }

    pub fn get(&self, name: &str) -> String {
        self.refs.get(name).cloned().unwrap_or_default()
    }

    /// Every ref is as expected, in the repository and through the URL.
    pub fn check(&self, step: &str) {
        let mode = self.host.mode;
        assert_eq!(
            self.host.refs(),
            self.refs,
            "{mode:?}, after {step}: the repository's refs"
        );
        assert_eq!(
            self.host.advertised(),
            self.refs,
            "{mode:?}, after {step}: the refs ls-remote shows"
        );
        if let Some(replica) = &self.host.replica {
            assert_eq!(
                ls_remote(&replica.url_as(&TestUser::new("porch"), REPO)),
                self.refs,
                "{mode:?}, after {step}: the refs ls-remote shows through the second replica"
            );
        }
        let published: BTreeMap<String, String> = self
            .refs
            .iter()
            .filter(|(name, _)| *name == "refs/heads/main" || name.starts_with("refs/tags/"))
            .map(|(name, id)| (name.clone(), id.clone()))
            .collect();
        assert_eq!(
            self.host.published(),
            published,
            "{mode:?}, after {step}: the published view"
        );
    }
}

pub fn output(out: &Output) -> String {
    format!("{}\n{}", stdout(out), stderr(out))
}

/// The refs a `push --porcelain` names, each with whether it was accepted.
pub fn verdicts(out: &Output) -> Vec<(String, bool)> {
    stdout(out)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let flag = fields.next()?;
            let (_, to) = fields.next()?.split_once(':')?;
            (flag.len() == 1).then(|| (to.to_string(), flag != "!"))
        })
        .collect()
}

/// The push was accepted, every ref of it.
pub fn accepted(mode: Mode, step: &str, out: &Output) {
    let verdicts = verdicts(out);
    assert!(
        out.status.success() && !verdicts.is_empty() && verdicts.iter().all(|(_, ok)| *ok),
        "{mode:?}: {step} was not accepted as a whole: {verdicts:?}\n{}",
        output(out)
    );
}

/// The push was refused, every ref of it.
fn refused_whole(mode: Mode, step: &str, out: &Output) {
    let verdicts = verdicts(out);
    assert!(
        !out.status.success() && !verdicts.is_empty() && verdicts.iter().all(|(_, ok)| !*ok),
        "{mode:?}: {step} was not refused as a whole: {verdicts:?}\n{}",
        output(out)
    );
}

/// The push was refused, every ref of it, naming `rule`.
pub fn refused(mode: Mode, step: &str, out: &Output, rule: &str) {
    refused_whole(mode, step, out);
    assert!(
        output(out).contains(rule),
        "{mode:?}: {step} was refused without naming {rule}:\n{}",
        output(out)
    );
}
