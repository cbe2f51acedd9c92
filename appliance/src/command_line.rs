//! Admin commands from the command line: sent to the running server over its control
//! socket when there is one, else carried out here directly on the store. Either way
//! [`admin::execute`] does the work.

use std::process::ExitCode;

use anyhow::Context;
use gannet_core::auth::password;
use gannet_core::store::Store;

use crate::admin::{self, execute, load_config, store_dir};
use crate::cli::{AccountCommand, AdminCommand, AdminUserCommand, Global, RulesCommand};
use crate::control;

/// Runs an admin command from the command line.
pub(crate) fn run_cli(global: &Global, mut command: AdminCommand) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    // The password is checked and hashed here, so that it never travels and the slow
    // hash never runs on the server's admin thread.
    if let AdminCommand::Account(AccountCommand::Add {
        password: pw,
        spam_level,
        ..
    }) = &mut command
    {
        password::check_policy(pw)?;
        *pw = password::hash(pw)?;
        *spam_level = Some(config.spam.default_level.clone());
    }
    hash_passwords(&mut command)?;
    if let AdminCommand::Rules(RulesCommand::Check { list }) = command {
        return admin::rules_check(&config, list);
    }
    run_and_print(&config, &command)
}

/// Checks and hashes the new passwords of the commands that set one (other than `account
/// add`, done above with its defaults).
pub(crate) fn hash_passwords(command: &mut AdminCommand) -> anyhow::Result<()> {
    let pw = match command {
        AdminCommand::Account(AccountCommand::Set {
            password: Some(pw), ..
        }) => pw,
        AdminCommand::Admin(AdminUserCommand::Add { password: pw, .. })
        | AdminCommand::Admin(AdminUserCommand::Password { password: pw, .. }) => pw,
        _ => return Ok(()),
    };
    password::check_policy(pw)?;
    *pw = password::hash(pw)?;
    Ok(())
}

/// Runs `command` through the server or on the store, and prints what it answers: on
/// standard output when it succeeded, else on standard error.
pub(crate) fn run_and_print(
    config: &gannet_core::config::Config,
    command: &AdminCommand,
) -> anyhow::Result<ExitCode> {
    let mut link = AdminLink::new(&config.server.data_dir);
    let outcome = link.run(command)?;
    link.close();
    let stream = if outcome.ok {
        &mut std::io::stdout() as &mut dyn std::io::Write
    } else {
        &mut std::io::stderr()
    };
    stream.write_all(&outcome.output)?;
    stream.flush()?;
    Ok(if outcome.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Where admin commands go: the running server's control socket, or (no server) the store
/// opened here, once, for as many commands as are run.
pub(crate) struct AdminLink<'a> {
    data_dir: &'a std::path::Path,
    store: Option<gannet_core::store::StoreOwner>,
}

impl<'a> AdminLink<'a> {
    pub(crate) fn new(data_dir: &'a std::path::Path) -> Self {
        AdminLink {
            data_dir,
            store: None,
        }
    }

    /// Carries out `command` where it must be.
    pub(crate) fn run(&mut self, command: &AdminCommand) -> anyhow::Result<admin::Outcome> {
        if self.store.is_none() {
            if let Some(outcome) = control::request(self.data_dir, command)? {
                return Ok(outcome);
            }
        }
        let owner = match &mut self.store {
            Some(owner) => owner,
            None => self
                .store
                .insert(Store::open(&store_dir(self.data_dir)).with_context(|| {
                    format!(
                        "cannot open the store in {} (is a server starting?)",
                        self.data_dir.display()
                    )
                })?),
        };
        Ok(execute(owner.store(), None, command))
    }

    /// Closes the store if it was opened here.
    pub(crate) fn close(self) {
        if let Some(owner) = self.store {
            owner.close();
        }
    }
}
