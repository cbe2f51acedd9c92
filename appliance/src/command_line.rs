//! Admin commands from the command line: sent to the running server over its control
//! socket when there is one, else carried out here directly on the store. Either way
//! [`admin::execute`] does the work.

use std::process::ExitCode;

use anyhow::Context;
use gannet_core::auth::password;
use gannet_core::store::Store;

use crate::admin::{self, execute, load_config, store_dir};
use crate::cli::{AccountCommand, AdminCommand, Global, RulesCommand};
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
    if let AdminCommand::Rules(RulesCommand::Check { list }) = command {
        return admin::rules_check(&config, list);
    }
    let outcome = match control::request(&config.server.data_dir, &command)? {
        Some(outcome) => outcome,
        None => {
            let owner = Store::open(&store_dir(&config.server.data_dir)).with_context(|| {
                format!(
                    "cannot open the store in {} (is a server starting?)",
                    config.server.data_dir.display()
                )
            })?;
            let outcome = execute(owner.store(), None, &command);
            owner.close();
            outcome
        }
    };
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
