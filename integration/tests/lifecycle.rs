//! The package lifecycle over plain `git push` through the server (contract
//! §6): the scenario list of [`cadgate_integration::scenarios`] with the
//! cadgate server as the transport, in every layout, and the role matrix.

use std::path::PathBuf;

use cadgate_integration::scenarios::{self, Transport, DIRECTORY, NESTED, ROOT};
use cadgate_integration::*;

/// Git over HTTP through a running cadgate server.
struct Proxy {
    server: Server,
}

impl Proxy {
    fn start() -> Self {
        Self {
            server: Server::start(&scenarios::cadgate_config()),
        }
    }
}

impl Transport for Proxy {
    fn name(&self) -> String {
        "cadgate server".into()
    }

    fn clone_as(&self, user: &str, repository: &str) -> GitClient {
        let client = GitClient::new();
        client.git(&[
            "clone",
            "-q",
            &self.server.url_as(&TestUser::new(user), repository),
            "w",
        ]);
        client
    }

    fn repository_dir(&self, repository: &str) -> PathBuf {
        self.server.repo_dir(repository)
    }
}

#[test]
fn every_transition_at_the_repository_root() {
    scenarios::run_all(&Proxy::start(), ROOT);
}

#[test]
fn every_transition_for_nested_package_paths() {
    scenarios::run_all(&Proxy::start(), NESTED);
}

#[test]
fn every_transition_below_a_repository_directory() {
    scenarios::run_all(&Proxy::start(), DIRECTORY);
}

#[test]
fn each_role_may_make_exactly_its_transitions() {
    scenarios::role_matrix(&Proxy::start(), NESTED);
}
